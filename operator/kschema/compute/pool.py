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

from kschema.compute.frames import LENGTH
from kschema.compute.resident import Sent
from kschema.formats.budget import LIMITS, TooComplexError

__all__ = ["WorkerPool"]

log = logging.getLogger(__name__)

# A fresh interpreter importing the checkers; generous, since a busy node may be slow to start one.
_START_SECONDS = 60

P = ParamSpec("P")
T = TypeVar("T")


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        # The declared Schemas this worker holds (see `resident`): a new worker holds none.
        self.sent = Sent(LIMITS.worker_resident_specs, LIMITS.worker_resident_bytes)

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
        worker = cls(process)
        try:
            async with asyncio.timeout(_START_SECONDS):
                await worker.answer()
        except (TimeoutError, asyncio.IncompleteReadError):
            await worker.kill()
            raise RuntimeError(f"a worker process did not start within {_START_SECONDS} s") from None
        except BaseException:
            # Cancelled while starting (the pool closing, or the request that needed it gone): the
            # process belongs to no pool yet, so it would outlive its parent, and then die writing its
            # "ready" into a closed pipe.
            await worker.kill()
            raise
        return worker

    async def answer(self) -> tuple[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        (size,) = LENGTH.unpack(await stdout.readexactly(LENGTH.size))
        answer: tuple[str, Any] = pickle.loads(await stdout.readexactly(size))
        return answer

    async def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(self.sent.frame((fn, args)))
        await stdin.drain()
        return await self.answer()

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
    result (or raises its exception). A task running longer than `timeout` is killed with its worker and
    answered with `TooComplexError`; so is one whose worker dies (the memory limit). A fresh worker takes
    the next task."""

    def __init__(
        self,
        processes: int = LIMITS.worker_processes,
        timeout: float = LIMITS.worker_timeout_seconds,
        memory_bytes: int = LIMITS.worker_memory_bytes,
        *,
        warm: bool = False,
    ) -> None:
        if processes < 1:
            raise ValueError(f"a worker pool needs at least one process, got {processes}")
        self.processes = processes
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self.warm = warm
        self._warming: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self.killed = 0  # runaway tasks killed since start, for tests and metrics

    async def start(self) -> None:
        """Opens the pool. A `warm` pool starts its workers in the background now, and a replacement as
        soon as one is killed, so no request waits for an interpreter to start (the webhook has 10 s in
        all); otherwise workers start on first use, and a process that never checks anything never pays
        for them."""
        self._slots = asyncio.Semaphore(self.processes)
        if self.warm:
            for _ in range(self.processes):
                self._warm_one()
        log.info("Started the worker pool processes=%d timeout_seconds=%g", self.processes, self.timeout)

    def _warm_one(self) -> None:
        task = asyncio.create_task(self._spawn_idle(), name="kschema-worker-start")
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)

    async def _spawn_idle(self) -> None:
        slots = self._slots
        try:
            worker = await self._spawn()
        except (RuntimeError, OSError) as exc:
            log.error("Failed to start a worker process error=%s", exc)
            return
        if self._slots is slots:
            self._idle.append(worker)
        else:
            await worker.kill()

    async def close(self) -> None:
        for task in list(self._warming):
            task.cancel()
        await asyncio.gather(*self._warming, return_exceptions=True)
        self._slots = None
        workers, self._all, self._idle = list(self._all), set(), []
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
        slots = self._slots
        if slots is None:
            raise RuntimeError("the worker pool is not started")
        async with slots:  # at most `processes` tasks at once; the others wait their turn
            worker = self._idle.pop() if self._idle else await self._spawn()
            healthy = False
            try:
                kind, value = await self._call(worker, fn, args)
                healthy = True
            finally:
                if healthy and self._slots is slots:
                    self._idle.append(worker)
                else:
                    # Timed out, died or cancelled mid-task: it may still be busy, so it is not reused.
                    self._all.discard(worker)
                    await worker.kill()
                    if self.warm and self._slots is slots:
                        self._warm_one()
        if kind == "error":
            raise value
        result: T = value
        return result

    async def _spawn(self) -> _Worker:
        worker = await _Worker.start(self.memory_bytes)
        self._all.add(worker)
        return worker

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
