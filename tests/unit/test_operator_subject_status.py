"""A Subject's projected status fields are written when they differ from what is known to be on the
object: written by the writer, put there by the Subject's own reconcile patch, or seen on the watch."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from kschema.operator.kube import Kube
from kschema.operator.subject_status import SubjectStatus, as_patch, fields_of

KEY = ("shop", "orders-value")
EMPTY = (None, 0, "orders-value-schemas")
TWO = (2, 2, "orders-value-schemas")


class _Kube:
    def __init__(self) -> None:
        self.statuses: list[tuple[tuple[str, str], dict[str, Any]]] = []

    async def patch_subject_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.statuses.append(((namespace, name), status))


def _setup(busy: bool = False) -> tuple[SubjectStatus, _Kube]:
    kube = _Kube()
    return SubjectStatus(cast(Kube, kube), busy=lambda key: busy, delay=0.01), kube


async def test_what_a_projection_wants_is_written_once() -> None:
    status, kube = _setup()
    status.want(KEY, TWO)
    status.want(KEY, TWO)
    await asyncio.sleep(0.05)
    assert kube.statuses == [(KEY, as_patch(TWO))]
    status.observe(KEY, TWO)  # the echo of that patch
    await asyncio.sleep(0.05)
    assert len(kube.statuses) == 1


async def test_fields_the_reconcile_reports_in_its_own_patch_are_not_written_again() -> None:
    status, kube = _setup()
    status.want(KEY, EMPTY)  # the projection of a Subject created ahead of its Schemas
    status.reported(KEY, EMPTY)  # ... goes into kopf's status patch of its reconcile
    await asyncio.sleep(0.05)
    assert kube.statuses == []

    status.want(KEY, TWO)  # the Schemas' projection: newer, written by the writer
    await asyncio.sleep(0.05)
    assert kube.statuses == [(KEY, as_patch(TWO))]


async def test_an_older_status_that_lands_late_is_seen_on_the_watch_and_put_right() -> None:
    status, kube = _setup()
    status.want(KEY, EMPTY)
    status.reported(KEY, EMPTY)
    status.want(KEY, TWO)
    await asyncio.sleep(0.05)
    assert kube.statuses == [(KEY, as_patch(TWO))]
    status.observe(KEY, TWO)
    # The reconcile's patch, answered slowly, lands after the writer's and overwrites it.
    status.observe(KEY, EMPTY)
    await asyncio.sleep(0.05)
    assert kube.statuses == [(KEY, as_patch(TWO)), (KEY, as_patch(TWO))]


async def test_an_echo_overtaken_by_a_newer_one_within_the_delay_writes_nothing() -> None:
    status, kube = _setup()
    status.reported(KEY, EMPTY)
    status.want(KEY, EMPTY)
    status.observe(KEY, (None, None, None))  # the Subject's creation event, before the reconcile's patch
    status.observe(KEY, EMPTY)  # ... and the patch's echo, before the writer's delay has passed
    await asyncio.sleep(0.05)
    assert kube.statuses == []


async def test_subjects_this_process_does_not_project_are_not_followed() -> None:
    status, kube = _setup()
    status.observe(KEY, (3, 3, "elsewhere"))
    status.want(KEY, TWO)
    status.forget(KEY)
    status.observe(KEY, EMPTY)
    await asyncio.sleep(0.05)
    assert kube.statuses == []


async def test_the_writer_waits_while_the_subject_is_busy_but_only_for_its_bound() -> None:
    status, kube = _setup(busy=True)
    status.want(KEY, TWO)
    await asyncio.sleep(0.02)
    assert kube.statuses == []
    await asyncio.sleep(0.1)  # three deferrals of 0.01 s, then written all the same
    assert kube.statuses == [(KEY, as_patch(TWO))]


def test_the_fields_of_a_status_on_the_watch() -> None:
    assert fields_of({}) == (None, None, None)
    assert fields_of({"latestVersion": 2, "versionCount": 2, "configMapName": "cm"}) == (2, 2, "cm")
    assert fields_of({"latestVersion": "2", "versionCount": None}) == (None, None, None)
