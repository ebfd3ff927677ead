"""Reconciles that finish outside kopf's per-object processing when a burst is larger than it can hold.

kopf starts the processing of every object of a burst at once (it cannot bound it: its `worker_limit`
deadlocks with indexes at start-up), and every object waiting its turn for registration keeps all of that
processing alive: the body, the cause, the handler's kwargs, about ten frames of kopf's call chain. That
is about 20 KiB an object; 7,000 of them waiting is the largest part of the operator's peak memory.

Past `limit` reconciles waiting in kopf, a Schema's reconcile hands what is left of it to a task of its
own (a few KiB: the spec and where to write the outcome) and returns, so kopf's processing of the object
ends. The task registers the version on the same turns and batches as the others, and writes the status
itself, with the digest that tells kopf the object is handled (`DigestDiffBaseStorage` leaves the digest
to it meanwhile): still one status write per reconcile. Until the task has written it, the object has no
new digest, so a restart handles it again, and nothing is lost.

One task per object: a newer spec given while its work is pending replaces what has not started (or
what is still retrying); what started is not written once a newer one is waiting."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# `run(superseded)`: finishes one reconcile; `superseded()` says a newer one is waiting (skip the write).
Run = Callable[[Callable[[], bool]], Awaitable[None]]


@dataclass(eq=False, slots=True)
class _Pending:
    digest: str  # of the newest spec given
    next: Run | None
    task: asyncio.Task[None] | None = None


class Deferrals:
    """`inline()` counts the reconciles waiting inside kopf's processing; `defer` is for those past
    `limit` of them, and for every later reconcile of an object whose deferred work is still pending (so
    one object's reconciles never run in two places)."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self.limit = limit
        self._inline = 0
        self._pending: dict[str, _Pending] = {}

    def holds(self, uid: str) -> bool:
        """Whether deferred work of the object is pending: it writes the object's digest, kopf does not."""
        return uid in self._pending

    def should_defer(self, uid: str) -> bool:
        return uid in self._pending or self._inline >= self.limit

    @property
    def pending(self) -> int:
        return len(self._pending)

    @contextlib.contextmanager
    def inline(self) -> Iterator[None]:
        self._inline += 1
        try:
            yield
        finally:
            self._inline -= 1

    def defer(self, uid: str, digest: str, run: Run) -> None:
        """Runs `run` in the object's task; `digest` is the spec's (the same digest again is no news:
        the echo of the object's own status write, say)."""
        pending = self._pending.get(uid)
        if pending is not None:
            if pending.digest != digest:
                pending.digest, pending.next = digest, run
            return
        pending = self._pending[uid] = _Pending(digest, run)
        pending.task = asyncio.create_task(self._drain(uid, pending), name=f"deferred reconcile {uid}")

    async def _drain(self, uid: str, pending: _Pending) -> None:
        try:
            while pending.next is not None:
                run, pending.next = pending.next, None
                try:
                    await run(lambda: pending.next is not None)
                except Exception:  # a run reports its own outcomes; this is a fault of our own
                    logger.exception("A deferred reconcile failed uid=%s", uid)
        finally:
            if self._pending.get(uid) is pending:
                del self._pending[uid]

    async def cancel(self, uid: str) -> None:
        """Stops the object's pending work (it is being deleted) and waits until it has stopped."""
        pending = self._pending.pop(uid, None)
        if pending is not None and pending.task is not None:
            pending.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending.task

    async def close(self) -> None:
        """Stops all pending work at once (the operator is stopping) and waits until it has stopped."""
        pending, self._pending = self._pending, {}
        tasks = [p.task for p in pending.values() if p.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
