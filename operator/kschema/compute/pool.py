"""A small pool of worker processes for CPU-heavy work (parsing, compatibility checks, validation).

Why processes and not threads: a check is pure Python, so in a thread it holds the GIL and starves the
event loop that serves the read API, the webhook and the operator. Why not `ProcessPoolExecutor`: it
cannot stop one runaway task; here each worker has its own pipe, and a task that passes its timeout is
killed with its process, which is replaced at once. Each worker also has an address-space limit
(`RLIMIT_AS`), so a task that allocates without bound fails with `MemoryError` inside its worker.

Workers are started from a fork server (never forked from the event loop's own process, which has
threads) and import `kschema.compute.tasks` once, before their first task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import resource
import signal
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any, ParamSpec, TypeVar

from kschema.formats.budget import LIMITS, TooComplexError

__all__ = ["WorkerPool"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_PRELOAD = ["kschema.compute.tasks"]


def _serve(conn: multiprocessing.connection.Connection, memory_bytes: int) -> None:
    """A worker's loop: one task at a time, answers `("ok", result)` or `("error", exception)`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, Any] = ("ok", fn(*args))
        except MemoryError:
            answer = ("error", TooComplexError(f"the work needed more than {memory_bytes >> 20} MiB"))
        except Exception as exc:
            answer = ("error", exc)
        try:
            conn.send(answer)
        except Exception as exc:  # an unpicklable result or exception is a bug in the task
            conn.send(("error", RuntimeError(f"worker could not send its answer: {exc!r}")))


class _Worker:
    def __init__(self, context: Any, memory_bytes: int) -> None:
        parent, child = multiprocessing.Pipe()
        self.conn = parent
        self.process: BaseProcess = context.Process(
            target=_serve, args=(child, memory_bytes), name="kschema-worker", daemon=True
        )
        self.process.start()
        child.close()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, AttributeError, ValueError):
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


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
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()
        self.killed = 0  # runaway tasks killed since start, for tests and metrics

    async def start(self) -> None:
        self._idle = asyncio.Queue()
        for _ in range(self.processes):
            self._idle.put_nowait(await self._spawn())
        log.info("Started the worker pool processes=%d timeout_seconds=%g", self.processes, self.timeout)

    async def _spawn(self) -> _Worker:
        worker = await asyncio.to_thread(_Worker, self._context, self.memory_bytes)
        self._all.add(worker)
        return worker

    async def close(self) -> None:
        for worker in list(self._all):
            await asyncio.to_thread(worker.kill)
        self._all.clear()
        self._idle = None
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
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()
        fd = worker.conn.fileno()

        def readable() -> None:
            if not answered.done():
                answered.set_result(None)

        worker.conn.send((fn, args))
        loop.add_reader(fd, readable)
        try:
            async with asyncio.timeout(self.timeout):
                await answered
        except TimeoutError:
            self.killed += 1
            log.warning(
                "Killed a worker task that ran too long task=%s seconds=%g", fn.__name__, self.timeout
            )
            raise TooComplexError(f"the work did not finish within {self.timeout:g} s") from None
        finally:
            loop.remove_reader(fd)
        try:
            answer: tuple[str, Any] = worker.conn.recv()
        except (EOFError, OSError):
            self.killed += 1
            raise TooComplexError(
                f"the worker stopped (exit code {worker.process.exitcode}), "
                f"most likely at its {self.memory_bytes >> 20} MiB memory limit"
            ) from None
        return answer

    async def _replace(self, worker: _Worker, idle: asyncio.Queue[_Worker]) -> None:
        """A worker whose task failed abnormally (timeout, death, cancellation) is not reused: it may
        still be busy. It is killed and a fresh one takes its place."""
        self._all.discard(worker)
        await asyncio.to_thread(worker.kill)
        if self._idle is idle:
            idle.put_nowait(await self._spawn())
