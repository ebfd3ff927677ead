"""The operator's Event recorder with a recording sink and a fake clock: one Event per note while the
budget lasts, repeats counted on the Event already posted, bursts summarised per Subject, writes bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kschema.operator.events import EventNotPosted, EventRecorder, Note, ObjectRef


class Sink:
    def __init__(self) -> None:
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.patched: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = False

    async def create_event(self, namespace: str, body: dict[str, Any]) -> str:
        if self.fail:
            raise EventNotPosted("429 Too Many Requests")
        self.created.append((namespace, body))
        return f"event-{len(self.created)}"

    async def patch_event(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        if self.fail:
            raise EventNotPosted("404 Not Found")
        self.patched.append((namespace, name, body))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SUBJECT = ObjectRef("Subject", "team", "orders-value", "uid-subject")


def schema(version: int) -> ObjectRef:
    return ObjectRef("Schema", "team", f"orders-value-v{version}", f"uid-v{version}")


def registered(version: int) -> Note:
    message = f"Registered version {version} of orders-value as ID {100 + version}"
    return Note(schema(version), "Normal", "Registered", message, SUBJECT)


def recorder(sink: Sink, clock: Clock, **kwargs: Any) -> EventRecorder:
    return EventRecorder(sink, component="kschema-operator", instance="test", clock=clock, **kwargs)


def test_a_note_becomes_an_event_on_its_object_as_kubectl_describe_lists_it() -> None:
    sink, clock = Sink(), Clock()
    events = recorder(sink, clock)

    events.record(registered(3))
    asyncio.run(events.flush())

    [(namespace, body)] = sink.created
    assert namespace == "team"
    assert body["involvedObject"] == {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Schema",
        "namespace": "team",
        "name": "orders-value-v3",
        "uid": "uid-v3",
    }
    assert (body["type"], body["reason"], body["count"]) == ("Normal", "Registered", 1)
    assert body["message"] == "Registered version 3 of orders-value as ID 103"
    assert body["source"] == {"component": "kschema-operator"}
    assert body["firstTimestamp"] == body["lastTimestamp"]


def test_repeats_raise_the_count_of_the_event_already_posted() -> None:
    sink, clock = Sink(), Clock()
    events = recorder(sink, clock)
    refused = Note(schema(3), "Warning", "Refused", "Refused: not BACKWARD compatible")

    events.record(refused)
    asyncio.run(events.flush())
    for _ in range(5):
        events.record(refused)
    clock.now += 1
    asyncio.run(events.flush())

    assert len(sink.created) == 1
    assert [(name, body["count"]) for _, name, body in sink.patched] == [("event-1", 6)]


def test_a_repeat_after_the_window_is_a_new_event() -> None:
    sink, clock = Sink(), Clock()
    events = recorder(sink, clock, repeat_window=600)
    refused = Note(schema(3), "Warning", "Refused", "Refused: not BACKWARD compatible")

    events.record(refused)
    asyncio.run(events.flush())
    clock.now += 601
    events.record(refused)
    asyncio.run(events.flush())

    assert len(sink.created) == 2
    assert sink.patched == []


def test_a_burst_of_1000_versions_is_summarised_on_the_subject_in_a_bounded_number_of_writes() -> None:
    sink, clock = Sink(), Clock()
    events = recorder(sink, clock, burst=20, per_second=2)

    for version in range(1, 1001):
        events.record(registered(version))
    asyncio.run(events.flush())
    for _ in range(10):
        clock.now += 1
        asyncio.run(events.flush())

    individual = [b for _, b in sink.created if b["involvedObject"]["kind"] == "Schema"]
    summaries = [b for _, b in sink.created if b["involvedObject"]["kind"] == "Subject"]
    assert len(individual) == 20
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary["involvedObject"]["name"] == "orders-value"
    assert summary["count"] == 980
    assert summary["message"].startswith("980 Registered events, summarised to spare the API server: ")
    assert "Registered version 21 of orders-value as ID 121" in summary["message"]
    assert summary["message"].endswith("Registered version 1000 of orders-value as ID 1100")
    assert len(summary["message"]) <= 1024
    assert events.writes == 21


def test_notes_of_a_running_burst_update_its_summary_in_place_until_the_burst_is_over() -> None:
    sink, clock = Sink(), Clock()
    events = recorder(sink, clock, burst=2, per_second=1)

    def flush_after(versions: range) -> None:
        for version in versions:
            events.record(registered(version))
        clock.now += 1
        asyncio.run(events.flush())

    flush_after(range(1, 11))  # 2 Events, 8 notes wait in the summary
    flush_after(range(11, 21))  # the summary is posted: 18
    flush_after(range(21, 31))  # and updated: 28
    flush_after(range(0))  # a quiet interval ends the burst
    flush_after(range(31, 32))  # so the next version has its own Event again

    assert [b["message"] for _, b in sink.created] == [
        "Registered version 1 of orders-value as ID 101",
        "Registered version 2 of orders-value as ID 102",
        sink.created[2][1]["message"],
        "Registered version 31 of orders-value as ID 131",
    ]
    assert sink.created[2][1]["count"] == 18
    [(_, name, body)] = sink.patched
    assert (name, body["count"]) == ("event-3", 28)
    assert body["message"].endswith("Registered version 30 of orders-value as ID 130")


def test_notes_without_a_group_wait_for_the_budget_and_the_excess_is_dropped() -> None:
    sink, clock = Sink(), Clock()
    events = recorder(sink, clock, burst=2, per_second=1, max_pending=3)

    for version in range(1, 6):
        events.record(Note(schema(version), "Warning", "Refused", f"Refused: version {version}"))
    asyncio.run(events.flush())
    clock.now += 1
    asyncio.run(events.flush())

    assert [b["message"] for _, b in sink.created] == [
        "Refused: version 1",
        "Refused: version 2",
        "Refused: version 3",
    ]


def test_an_api_server_that_refuses_events_never_stops_the_operator() -> None:
    sink, clock = Sink(), Clock()
    events = recorder(sink, clock)
    sink.fail = True

    events.record(registered(1))
    asyncio.run(events.flush())

    sink.fail = False
    events.record(registered(1))
    asyncio.run(events.flush())
    assert len(sink.created) == 1  # posted anew, not patched onto an Event that never was


def test_long_messages_are_clipped() -> None:
    sink, clock = Sink(), Clock()
    events = recorder(sink, clock)

    events.record(Note(schema(1), "Warning", "Refused", "x" * 5000))
    asyncio.run(events.flush())

    assert len(sink.created[0][1]["message"]) == 1024


@pytest.mark.parametrize("cancel_after", [0.0, 0.05])
def test_run_posts_what_waits_when_it_is_stopped(cancel_after: float) -> None:
    sink = Sink()
    events = EventRecorder(sink, component="kschema-operator", instance="test", interval=10)

    async def main() -> None:
        task = asyncio.create_task(events.run())
        events.record(registered(1))
        await asyncio.sleep(cancel_after)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert len(sink.created) == 1
