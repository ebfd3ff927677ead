"""A small pool of worker processes for CPU-heavy work (parsing, compatibility checks, validation).

Why processes and not threads: a check is pure Python, so in a thread it holds the GIL and starves the
event loop that serves the read API, the webhook and the operator. Why not `ProcessPoolExecutor`: it
cannot stop one runaway task; here each worker has its own pipes, and a task that passes its timeout is
killed with its process, which is replaced at once. Each worker also has an address-space limit
(`RLIMIT_AS`), so a task that allocates without bound fails with `MemoryError` inside its worker.

Workers are fresh interpreters (`python -m kschema.compute.worker`), never forks of the event loop's
own process (which has threads and open connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from kschema.compute.frames import LENGTH, frame
from kschema.formats.budget import LIMITS, TooComplexError

__all__ = ["WorkerPool"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, memory_bytes: int) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kschema.compute.worker",
            str(memory_bytes),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(frame((fn, args)))
        await stdin.drain()
        (size,) = LENGTH.unpack(await stdout.readexactly(LENGTH.size))
        answer: tuple[str, Any] = pickle.loads(await stdout.readexactly(size))
        return answer

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        """Closes the worker's input, so it ends by itself; kills it if it does not."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            async with asyncio.timeout(2):
                await self.process.wait()
        except TimeoutError:
            await self.kill()


class WorkerPool:
    """`await pool.run(fn, *args)` runs a module-level function in a worker process and returns its
    result (or raises its exception). A task running longer than `timeout` is killed and answered with
    `TooComplexError`; so is one whose worker dies (the memory limit)."""

    def __init__(
        self,
        processes: int = LIMITS.worker_processes,
        timeout: float = LIMITS.worker_timeout_seconds,
        memory_bytes: int = LIMITS.worker_memory_bytes,
    ) -> None:
        if processes < 1:
            raise ValueError(f"a worker pool needs at least one process, got {processes}")
        self.processes = processes
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()
        self.killed = 0  # runaway tasks killed since start, for tests and metrics

    async def start(self) -> None:
        self._idle = asyncio.Queue()
        workers = await asyncio.gather(*(self._spawn() for _ in range(self.processes)))
        for worker in workers:
            self._idle.put_nowait(worker)
        log.info("Started the worker pool processes=%d timeout_seconds=%g", self.processes, self.timeout)

    async def _spawn(self) -> _Worker:
        worker = await _Worker.start(self.memory_bytes)
        self._all.add(worker)
        return worker

    async def close(self) -> None:
        self._idle = None
        workers, self._all = list(self._all), set()
        await asyncio.gather(*(w.stop() for w in workers))
        log.info("Stopped the worker pool")

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if kwargs:
            raise TypeError("worker tasks take positional arguments only")
        if self._idle is None:
            raise RuntimeError("the worker pool is not started")
        idle = self._idle
        worker = await idle.get()
        healthy = False
        try:
            kind, value = await self._call(worker, fn, args)
            healthy = True
        finally:
            if healthy:
                idle.put_nowait(worker)
            else:
                await self._replace(worker, idle)
        if kind == "error":
            raise value
        result: T = value
        return result

    async def _call(self, worker: _Worker, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
        try:
            async with asyncio.timeout(self.timeout):
                return await worker.call(fn, args)
        except TimeoutError:
            self.killed += 1
            log.warning(
                "Killed a worker task that ran too long task=%s seconds=%g", fn.__name__, self.timeout
            )
            raise TooComplexError(f"the work did not finish within {self.timeout:g} s") from None
        except (asyncio.IncompleteReadError, ConnectionError):
            self.killed += 1
            await worker.kill()
            raise TooComplexError(
                f"the worker stopped (exit code {worker.process.returncode}), "
                f"most likely at its {self.memory_bytes >> 20} MiB memory limit"
            ) from None

    async def _replace(self, worker: _Worker, idle: asyncio.Queue[_Worker]) -> None:
        """A worker whose task failed abnormally (timeout, death, cancellation) is not reused: it may
        still be busy. It is killed and a fresh one takes its place."""
        self._all.discard(worker)
        await worker.kill()
        if self._idle is idle:
            idle.put_nowait(await self._spawn())
