"""The Subject status fields that follow its projections: `latestVersion`, `versionCount` and
`configMapName` (the printer columns and Argo CD's view of the subject).

They are kept level-based: what each projection computed is *wanted*, and a writer task patches it
into the status when it differs from what is *known* to be there. Known is the last value written by the
writer, written by the Subject's own reconcile (it puts the fields into kopf's status patch, which it
writes anyway: a Subject created with its Schemas costs no separate patch for its first projection), or
seen on the watch stream, whichever came last. A patch that lands late (kopf's, when the API server
answers slowly) and overwrites a newer value is therefore seen on the watch and put right.

At most one patch per `delay`: a burst of versions for one subject is one or two patches, not one per
version, and while versions of the subject are still being registered (`busy`) the writer waits up to
`DEFERRALS` more delays, so that the end of a burst is one patch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from kschema.kubeapi import KubeApiError, NotFound
from kschema.operator.kube import Kube

logger = logging.getLogger(__name__)

DELAY_SECONDS = 1.0  # a Subject's status follows its projections this much later, at most
ATTEMPTS = 5
# While versions of the subject are being registered, its status waits up to this many more delays.
DEFERRALS = 3

Key = tuple[str, str]  # (namespace, Subject resource name)
# (latestVersion, versionCount, configMapName); None where the status has no value.
Fields = tuple[int | None, int | None, str | None]


def fields_of(status: Mapping[str, Any]) -> Fields:
    """The fields as a status on the watch has them."""
    latest, count, name = (status.get(k) for k in ("latestVersion", "versionCount", "configMapName"))
    return (
        latest if isinstance(latest, int) else None,
        count if isinstance(count, int) else None,
        name if isinstance(name, str) else None,
    )


def as_patch(fields: Fields) -> dict[str, Any]:
    return {"latestVersion": fields[0], "versionCount": fields[1], "configMapName": fields[2]}


@dataclass
class _State:
    known: Fields | None = None
    wanted: Fields | None = None
    writer: asyncio.Task[None] | None = None


class SubjectStatus:
    """One per process, owned by the `Projector`; `busy(key)` says whether versions of the subject are
    being registered (or are expected to be)."""

    def __init__(self, kube: Kube, *, busy: Callable[[Key], bool], delay: float = DELAY_SECONDS) -> None:
        self._kube = kube
        self._busy = busy
        self._delay = delay
        self._states: dict[Key, _State] = {}

    def want(self, key: Key, fields: Fields) -> None:
        """A projection's outcome: written unless already known to be there."""
        state = self._states.setdefault(key, _State())
        state.wanted = fields
        self._start(key, state)

    def reported(self, key: Key, fields: Fields) -> None:
        """The Subject's reconcile puts `fields` into its own status patch."""
        state = self._states.setdefault(key, _State())
        state.known = fields

    def observe(self, key: Key, fields: Fields) -> None:
        """A Subject's status as a watch event has it: only subjects this process projects are followed;
        one that differs from what is wanted gets a writer (after its delay, and only if the difference
        is still there then: our own patch's echo is usually on its way)."""
        state = self._states.get(key)
        if state is None or state.wanted is None:
            return
        state.known = fields
        self._start(key, state)

    def forget(self, key: Key) -> None:
        """The Subject is going: nothing more is written for it."""
        state = self._states.pop(key, None)
        if state is not None and state.writer is not None:
            state.writer.cancel()

    async def close(self) -> None:
        """Writes the statuses still waiting (on the way out, before the client closes)."""
        writers = [s.writer for s in self._states.values() if s.writer is not None]
        for writer in writers:
            writer.cancel()
        await asyncio.gather(*writers, return_exceptions=True)

    def _start(self, key: Key, state: _State) -> None:
        if state.wanted == state.known:
            return
        if state.writer is None or state.writer.done():
            state.writer = asyncio.create_task(self._write(key, state), name=f"kschema status {key}")

    async def _write(self, key: Key, state: _State) -> None:
        """Writes the wanted fields, at most once per delay (later while the subject is busy, up to
        `DEFERRALS` delays), until they are known to be there. Cancelled on the way out (`close`), it
        writes what is waiting at once; after `forget` it writes nothing."""
        failures = deferrals = 0
        namespace, name = key
        while True:
            cancelled = False
            try:
                await asyncio.sleep(self._delay * 2**failures)
            except asyncio.CancelledError:
                cancelled = True
            if self._states.get(key) is not state:
                return
            if self._busy(key) and deferrals < DEFERRALS and not cancelled:
                deferrals += 1
                continue
            deferrals = 0
            wanted = state.wanted
            if wanted is None or wanted == state.known:
                return
            try:
                await self._kube.patch_subject_status(namespace, name, as_patch(wanted))
            except NotFound:  # the Subject is gone: nothing to report on
                return
            except (KubeApiError, aiohttp.ClientError, TimeoutError) as error:
                failures += 1
                logger.warning(
                    "Failed to patch a Subject's status namespace=%s name=%s attempt=%d error=%s",
                    namespace,
                    name,
                    failures,
                    error,
                )
                if failures >= ATTEMPTS:
                    return  # the next projection or watch event of this subject tries again
                continue
            state.known = wanted
            failures = 0
