"""Deferred reconciles: past the limit of reconciles waiting inline an object's reconcile runs in a task of
its own, one task per object, a newer spec replaces the one not started yet, the same spec again is no
news, and a deletion stops the object's pending work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from kschema.operator.deferral import Deferrals, Run


def test_reconciles_defer_only_past_the_inline_limit() -> None:
    deferrals = Deferrals(2)
    assert not deferrals.should_defer("a")
    with deferrals.inline():
        assert not deferrals.should_defer("a")
        with deferrals.inline():
            assert deferrals.should_defer("a")
        assert not deferrals.should_defer("a")
    assert Deferrals(0).should_defer("a")
    with pytest.raises(ValueError, match="limit"):
        Deferrals(-1)


def test_an_object_with_pending_work_always_defers_and_kopf_leaves_its_digest_to_it() -> None:
    async def main() -> None:
        deferrals = Deferrals(100)
        release = asyncio.Event()

        async def work(superseded: Callable[[], bool]) -> None:
            await release.wait()

        deferrals.defer("a", "d1", work)
        assert deferrals.holds("a")
        assert deferrals.should_defer("a")
        assert not deferrals.holds("b")
        assert not deferrals.should_defer("b")
        release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert not deferrals.holds("a")
        assert deferrals.pending == 0

    asyncio.run(main())


def test_a_newer_spec_supersedes_the_running_one_and_the_same_spec_again_is_no_news() -> None:
    async def main() -> None:
        deferrals = Deferrals(0)
        done: list[tuple[str, bool]] = []
        gate, finished = asyncio.Event(), asyncio.Event()

        def work(name: str) -> Run:
            async def finish(superseded: Callable[[], bool]) -> None:
                await gate.wait()
                done.append((name, superseded()))
                if name == "third":
                    finished.set()

            return finish

        deferrals.defer("a", "d1", work("first"))
        await asyncio.sleep(0)  # the first has started
        deferrals.defer("a", "d1", work("echo"))
        deferrals.defer("a", "d2", work("second"))
        deferrals.defer("a", "d3", work("third"))
        gate.set()
        await asyncio.wait_for(finished.wait(), 5)
        # The first saw a newer spec waiting (it skips its write); the second never started.
        assert done == [("first", True), ("third", False)]

    asyncio.run(main())


def test_a_failing_run_is_logged_and_the_next_one_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        deferrals = Deferrals(0)
        gate, finished = asyncio.Event(), asyncio.Event()
        ran: list[str] = []

        async def broken(superseded: Callable[[], bool]) -> None:
            await gate.wait()
            raise RuntimeError("boom")

        async def fine(superseded: Callable[[], bool]) -> None:
            ran.append("fine")
            finished.set()

        deferrals.defer("a", "d1", broken)
        await asyncio.sleep(0)
        deferrals.defer("a", "d2", fine)
        gate.set()
        await asyncio.wait_for(finished.wait(), 5)
        assert ran == ["fine"]

    asyncio.run(main())
    assert "A deferred reconcile failed uid=a" in caplog.text


def test_cancel_stops_the_pending_work_and_close_stops_all_of_it() -> None:
    async def main() -> None:
        deferrals = Deferrals(0)
        stopped: list[str] = []

        def work(uid: str) -> Run:
            async def forever(superseded: Callable[[], bool]) -> None:
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    stopped.append(uid)
                    raise

            return forever

        for uid in ("a", "b", "c"):
            deferrals.defer(uid, "d", work(uid))
        await asyncio.sleep(0)
        await deferrals.cancel("a")
        assert stopped == ["a"]
        assert not deferrals.holds("a")
        assert deferrals.pending == 2
        await deferrals.cancel("a")  # nothing pending: a no-op
        await deferrals.close()
        assert sorted(stopped) == ["a", "b", "c"]
        assert deferrals.pending == 0

    asyncio.run(main())
