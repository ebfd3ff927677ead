"""Kubernetes Events a person can act on ("Registered version 3 of orders-value as ID 42"), posted so that
a burst never floods the API server.

kopf's `kopf.info`/`kopf.warn` post one Event per call with no aggregation (kopf leaves that to the
client, as client-go's EventCorrelator does), so the operator records its own Events here:

* a repeat of an Event already posted (same object, type, reason and message) within `repeat_window`
  raises that Event's `count` instead of creating another one, as client-go does;
* all writes share one token bucket (`burst`, then `per_second`); what arrives beyond it waits, and
  waiting notes that name a group (their Subject) are folded into one summary Event per group, type and
  reason, updated in place (at most once per flush) while the burst lasts, that is until a flush interval
  passes without a new note for it: a burst of 1,000 versions is a few dozen writes, not 1,000;
* `record` never blocks or raises: the handlers go on whatever happens to the Events, and what waits is
  bounded by `max_pending` (the rest is dropped and logged).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from kschema.model import API_VERSION

logger = logging.getLogger(__name__)

MAX_MESSAGE = 1024  # Events are for people; the conditions carry the full text
SUMMARY_EXAMPLES = 3  # items quoted in a summary, plus the last one


@dataclass(frozen=True, slots=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str
    uid: str
    api_version: str = API_VERSION

    def body(self) -> dict[str, str]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
        }


@dataclass(frozen=True, slots=True)
class Note:
    """One Event to post. `group` is where a burst of notes with this reason is summarised."""

    ref: ObjectRef
    type: str  # Normal | Warning
    reason: str
    message: str
    group: ObjectRef | None = None


class EventNotPosted(Exception):
    """The API server did not take an Event (the sink translates its client's errors into this)."""


class EventSink(Protocol):
    """The two API calls the recorder makes (the operator's `Kube` implements them); both raise
    `EventNotPosted` when the API server does not take the write."""

    async def create_event(self, namespace: str, body: dict[str, Any]) -> str:
        """Creates the Event and returns its name."""

    async def patch_event(self, namespace: str, name: str, body: dict[str, Any]) -> None: ...


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Posted:
    namespace: str
    name: str
    first: str
    count: int
    at: float  # monotonic time of the last write
    unwritten: int = 0  # repeats seen since


@dataclass
class _Group:
    note: Note  # the first note folded in (its group, type and reason)
    count: int = 0
    examples: list[str] = field(default_factory=list)
    last: str = ""
    posted: _Posted | None = None
    dirty: bool = False  # notes added since the summary was last written
    fresh: bool = False  # notes added during the current flush

    def add(self, note: Note, times: int) -> None:
        self.fresh = True
        self.count += times
        if len(self.examples) < SUMMARY_EXAMPLES:
            self.examples.append(note.message)
        else:
            self.last = note.message
        self.dirty = True

    def message(self) -> str:
        quoted = " | ".join(self.examples) + (f" | … | {self.last}" if self.last else "")
        return _clip(f"{self.count} {self.note.reason} events, summarised to spare the API server: {quoted}")


_Key = tuple[str, str, str, str]  # object uid, type, reason, message


class EventRecorder:
    def __init__(
        self,
        sink: EventSink,
        *,
        component: str,
        instance: str,
        burst: int = 50,
        per_second: float = 5.0,
        interval: float = 1.0,
        repeat_window: float = 600.0,
        max_pending: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._component = component
        self._instance = instance
        self._burst = burst
        self._per_second = per_second
        self._interval = interval
        self._window = repeat_window
        self._max_pending = max_pending
        self._clock = clock
        self._tokens = float(burst)
        self._refilled = clock()
        self._pending: OrderedDict[_Key, tuple[Note, int]] = OrderedDict()
        self._posted: OrderedDict[_Key, _Posted] = OrderedDict()
        self._groups: dict[tuple[str, str, str], _Group] = {}
        self._dropped = 0
        self.writes = 0  # Event creates and patches so far

    def record(self, note: Note) -> None:
        """Queues a note; it is posted by the next `flush`. Never blocks, never raises."""
        note = Note(note.ref, note.type, note.reason, _clip(note.message), note.group)
        key = (note.ref.uid, note.type, note.reason, note.message)
        waiting = self._pending.get(key)
        if waiting is not None:
            self._pending[key] = (waiting[0], waiting[1] + 1)
        elif len(self._pending) >= self._max_pending:
            self._dropped += 1
        else:
            self._pending[key] = (note, 1)

    async def run(self) -> None:
        """Flushes every `interval` until cancelled; a last flush on the way out."""
        try:
            while True:
                await asyncio.sleep(self._interval)
                await self.flush()
        finally:
            await asyncio.shield(self.flush())

    async def flush(self) -> None:
        self._refill()
        self._forget_old()
        # Repeats of Events already posted: raise their count (one write per Event per flush).
        for key in list(self._pending):
            note, times = self._pending[key]
            posted = self._posted.get(key)
            if posted is not None:
                posted.unwritten += times
                del self._pending[key]
        for key, posted in list(self._posted.items()):
            if posted.unwritten and self._take() and not await self._bump(posted):
                del self._posted[key]  # gone (expired, deleted): the next repeat creates it anew
        # New Events while the bucket lasts. Beyond it, and while a burst of their group runs, grouped
        # notes go into the group's summary.
        for key in list(self._pending):
            note, times = self._pending[key]
            group_key = None if note.group is None else (note.group.uid, note.type, note.reason)
            running = group_key is not None and group_key in self._groups
            if not running and self._take():
                del self._pending[key]
                posted = await self._create(note, times)
                if posted is not None:
                    self._posted[key] = posted
            elif group_key is not None:
                del self._pending[key]
                self._groups.setdefault(group_key, _Group(note)).add(note, times)
        for group_key, group in list(self._groups.items()):
            if group.dirty and self._take():
                await self._write_summary(group)
            elif not group.dirty and not group.fresh:
                del self._groups[group_key]  # a whole interval without a new note: the burst is over
            group.fresh = False
        if self._dropped:
            logger.warning("Dropped Kubernetes Events over the limit count=%d", self._dropped)
            self._dropped = 0

    # Internals ----------------------------------------------------------------------------------------

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self._burst), self._tokens + (now - self._refilled) * self._per_second)
        self._refilled = now

    def _take(self) -> bool:
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _expired(self, posted: _Posted) -> bool:
        return self._clock() - posted.at > self._window

    def _forget_old(self) -> None:
        while self._posted:
            key, posted = next(iter(self._posted.items()))
            if not self._expired(posted) or posted.unwritten:
                break
            del self._posted[key]

    def _body(self, note: Note, message: str, count: int, stamp: str) -> dict[str, Any]:
        return {
            "metadata": {"generateName": f"{note.ref.name}.", "namespace": note.ref.namespace},
            "involvedObject": note.ref.body(),
            "type": note.type,
            "reason": note.reason,
            "message": message,
            "count": count,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "reportingInstance": self._instance,
        }

    async def _create(self, note: Note, times: int) -> _Posted | None:
        stamp = _now()
        try:
            self.writes += 1
            name = await self._sink.create_event(
                note.ref.namespace, self._body(note, note.message, times, stamp)
            )
        except EventNotPosted as error:  # best effort: an Event is never worth failing a reconcile
            logger.warning(
                "Failed to post an Event namespace=%s object=%s reason=%s error=%s",
                note.ref.namespace,
                note.ref.name,
                note.reason,
                error,
            )
            return None
        return _Posted(note.ref.namespace, name, stamp, times, self._clock())

    async def _bump(self, posted: _Posted) -> bool:
        count = posted.count + posted.unwritten
        try:
            self.writes += 1
            await self._sink.patch_event(
                posted.namespace, posted.name, {"count": count, "lastTimestamp": _now()}
            )
        except EventNotPosted as error:
            logger.warning("Failed to update an Event name=%s error=%s", posted.name, error)
            return False
        posted.count, posted.unwritten, posted.at = count, 0, self._clock()
        return True

    async def _write_summary(self, group: _Group) -> None:
        assert group.note.group is not None
        group.dirty = False
        summary = Note(group.note.group, group.note.type, group.note.reason, group.message())
        if group.posted is None:
            group.posted = await self._create(summary, group.count)
            return
        try:
            self.writes += 1
            await self._sink.patch_event(
                group.posted.namespace,
                group.posted.name,
                {"count": group.count, "message": summary.message, "lastTimestamp": _now()},
            )
            group.posted.at = self._clock()
        except EventNotPosted as error:  # best effort, as above
            logger.warning("Failed to update an Event name=%s error=%s", group.posted.name, error)
            group.posted = None
