"""The store under concurrent writers, killed writers and a restarted PostgreSQL server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from kschema.store import VersionConflictError, get_version_with_schema
from kschema.store.base import RegistryStore, StoreUnavailableError, SubjectVersion
from kschema.store.factory import store_from_url
from kschema.store.sqlite import SqliteStore
from tests.harness.postgres import PostgresServer
from tests.harness.store_writer import planned
from tests.harness.stores import assert_consistent, avro_record, new_version

REPO_ROOT = Path(__file__).resolve().parents[2]


def start_writer(url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.harness.store_writer", url, *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


def acknowledged(lines: list[str]) -> list[tuple[str, int, int, str]]:
    parsed = []
    for line in lines:
        if line == "ready":
            continue
        subject, version, schema_id, fingerprint = line.split()
        parsed.append((subject, int(version), int(schema_id), fingerprint))
    return parsed


def assert_one_id_per_content(acks: list[tuple[str, int, int, str]]) -> None:
    ids_by_content: dict[str, set[int]] = defaultdict(set)
    contents_by_id: dict[int, set[str]] = defaultdict(set)
    for _, _, schema_id, fingerprint in acks:
        ids_by_content[fingerprint].add(schema_id)
        contents_by_id[schema_id].add(fingerprint)
    assert all(len(ids) == 1 for ids in ids_by_content.values()), "one content got several IDs"
    assert all(len(fps) == 1 for fps in contents_by_id.values()), "one ID was given to several contents"


async def assert_ids_grow_with_the_feed(store: RegistryStore) -> None:
    """New schemas (none pinned here) get IDs in the order their creation entered the change feed."""
    feed = await store.changes(0, limit=1_000_000)
    created = [c.schema_id for c in feed if c.kind == "schema" and c.schema_id is not None]
    assert created == sorted(created)
    assert len(created) == len(set(created))


async def test_concurrent_registrations_of_overlapping_schemas_agree_on_ids(store_url: str) -> None:
    stores = [store_from_url(store_url) for _ in range(3)]
    for s in stores:
        await s.open()
    try:
        # Every store registers the same 60 (subject, version, content) triples, 12 distinct contents,
        # in a different order; each store also runs several registrations at once.
        plan = [planned(i, subjects=5, distinct=12) for i in range(60)]

        async def register_all(store: RegistryStore, offset: int) -> list[tuple[str, int, int, str]]:
            order = plan[offset:] + plan[:offset]

            async def one(subject: str, version: int, schema: str) -> tuple[str, int, int, str]:
                new = new_version(subject, version, schema)
                result = await store.register(new)
                return subject, version, result.schema_id, new.fingerprint

            return list(await asyncio.gather(*(one(*item) for item in order)))

        results = await asyncio.gather(*(register_all(s, 20 * i) for i, s in enumerate(stores)))
        acks = [ack for batch in results for ack in batch]

        assert_one_id_per_content(acks)
        assert len({fp for *_, fp in acks}) == 12
        by_version: dict[tuple[str, int], set[int]] = defaultdict(set)
        for subject, version, schema_id, _ in acks:
            by_version[(subject, version)].add(schema_id)
        assert all(len(ids) == 1 for ids in by_version.values())
        snapshot = await stores[0].snapshot()
        assert_consistent(snapshot)
        assert len(snapshot.schemas) == 12
        assert len(snapshot.versions) == 60
        await assert_ids_grow_with_the_feed(stores[0])
    finally:
        for s in stores:
            await s.close()


async def test_several_processes_on_one_sqlite_file_agree_on_ids(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    writers = [
        start_writer(url, "--count", "80", "--subjects", "8", "--distinct", "25", "--seed", str(seed))
        for seed in range(4)
    ]
    outputs = []
    for writer in writers:
        out, err = await asyncio.to_thread(writer.communicate, timeout=120)
        assert writer.returncode == 0, err
        outputs.append(out.splitlines())
    acks = [ack for lines in outputs for ack in acknowledged(lines)]

    assert len(acks) == 4 * 80
    assert_one_id_per_content(acks)
    store = store_from_url(url)
    await store.open()
    try:
        snapshot = await store.snapshot()
        assert_consistent(snapshot)
        assert len(snapshot.schemas) == 25
        assert len(snapshot.versions) == 80
        stored = {(v.subject, v.version): v.schema_id for v in snapshot.versions}
        assert all(stored[(subject, version)] == schema_id for subject, version, schema_id, _ in acks)
        await assert_ids_grow_with_the_feed(store)
    finally:
        await store.close()


async def test_a_writer_killed_mid_batch_leaves_whole_versions_and_the_same_ids(store_url: str) -> None:
    # Half the batch is already registered, so the killed writer mixes new and idempotent registrations.
    first = start_writer(store_url, "--count", "40", "--distinct", "30000")
    out, err = await asyncio.to_thread(first.communicate, timeout=120)
    assert first.returncode == 0, err
    before = acknowledged(out.splitlines())

    writer = start_writer(store_url, "--count", "100000", "--distinct", "30000", "--seed", "7")
    assert writer.stdout is not None
    lines: list[str] = []
    # Read acknowledgements until well into the batch, then kill without warning.
    while len(lines) < 150:
        line = await asyncio.wait_for(asyncio.to_thread(writer.stdout.readline), timeout=60)
        assert line, writer.stderr.read() if writer.stderr else "writer exited"
        lines.append(line.strip())
    writer.send_signal(signal.SIGKILL)
    await asyncio.to_thread(writer.wait, 30)
    # Whatever it printed before dying was acknowledged too.
    lines.extend(part.strip() for part in writer.stdout.read().splitlines())
    killed_acks = acknowledged(lines)

    store = store_from_url(store_url)
    await store.open()
    try:
        snapshot = await store.snapshot()
        assert_consistent(snapshot)
        stored = {(v.subject, v.version): v for v in snapshot.versions}
        schemas = {s.id: s for s in snapshot.schemas}
        for subject, version, schema_id, fingerprint in before + killed_acks:
            found = stored[(subject, version)]
            assert found.schema_id == schema_id
            assert schemas[schema_id].fingerprint == fingerprint
        # Every version present, acknowledged or cut off after its commit, carries its planned content.
        for (subject, version), v in stored.items():
            i = (version - 1) * 10 + int(subject.removeprefix("s").removesuffix("-value"))
            planned_subject, planned_version, body = planned(i, subjects=10, distinct=30000)
            assert (planned_subject, planned_version) == (subject, version)
            assert schemas[v.schema_id].fingerprint == new_version(subject, version, body).fingerprint
            assert schemas[v.schema_id].schema == body
        feed = await store.changes(0, limit=1_000_000)
        assert {(c.subject, c.version) for c in feed if c.kind == "version"} == set(stored)
        assert {c.schema_id for c in feed if c.kind == "schema"} == set(schemas)
        # The store still takes writes, with a fresh ID above everything before the crash.
        fresh = await store.register(new_version("after-crash-value", 1, avro_record("AfterCrash", "x")))
        assert fresh.schema_id > max(schemas)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_restarted_postgres_is_used_again_and_nothing_acknowledged_is_lost(
    postgres_server: PostgresServer, postgres_dsn: str
) -> None:
    store = store_from_url(postgres_dsn)
    await store.open()
    acks: list[SubjectVersion] = []
    outages: list[StoreUnavailableError] = []
    stop = asyncio.Event()

    progress = asyncio.Condition()

    async def record(outcome: SubjectVersion | StoreUnavailableError) -> None:
        async with progress:
            if isinstance(outcome, StoreUnavailableError):
                outages.append(outcome)
            else:
                acks.append(outcome)
            progress.notify_all()

    async def register_loop() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            new = new_version("load-value", n, avro_record("Load", f"f{n}"))
            while True:
                try:
                    await record(await store.register(new))
                    break
                except StoreUnavailableError as error:
                    await record(error)
                    await asyncio.sleep(0.05)  # back off while the server is down

    async def until(check: Callable[[], bool]) -> None:
        async with asyncio.timeout(60), progress:
            await progress.wait_for(check)

    loop = asyncio.create_task(register_loop())
    try:
        await until(lambda: len(acks) >= 20)
        # An immediate stop is a crash: the server recovers from its WAL on the next start.
        await asyncio.to_thread(postgres_server.stop, "immediate")
        await until(lambda: len(outages) > 0)
        acked_during_crash = len(acks)
        await asyncio.to_thread(postgres_server.start)
        await until(lambda: len(acks) >= acked_during_crash + 20)
        stop.set()
        await asyncio.wait_for(loop, 60)
    finally:
        stop.set()
        loop.cancel()

    try:
        snapshot = await store.snapshot()
        assert_consistent(snapshot)
        stored = {(v.subject, v.version): v for v in snapshot.versions}
        for ack in acks:
            assert stored[(ack.subject, ack.version)] == ack
        ids = [a.schema_id for a in acks]
        assert ids == sorted(ids)
        # The change-feed listener reconnects too.
        await asyncio.wait_for(store.wait_for_changes(snapshot.seq - 1, timeout=30), 60)
    finally:
        await store.close()


async def test_concurrent_sqlite_writes_share_commits_and_each_keeps_its_own_outcome(tmp_path: Path) -> None:
    """Writes queued while a transaction commits go into the next one together (one fsync for all), yet
    each write succeeds or fails on its own, and everything acknowledged is there after a reopen."""
    path = tmp_path / "registry.db"
    store = SqliteStore(path)
    await store.open()
    try:
        fine = [new_version("orders-value", v, avro_record(f"Order{v}", "id")) for v in range(1, 41)]
        clash = new_version("orders-value", 5, avro_record("NotVersionFive", "id"))
        outcomes = await asyncio.gather(
            *(store.register(n) for n in [*fine[:20], clash, *fine[20:]]), return_exceptions=True
        )
        assert isinstance(outcomes[20], VersionConflictError)
        registered = [o for i, o in enumerate(outcomes) if i != 20]
        assert all(isinstance(o, SubjectVersion) for o in registered)
        assert store._writes is not None
        assert store._writes.transactions < len(outcomes) // 4  # batched, not one commit per write
    finally:
        await store.close()

    reopened = SqliteStore(path)
    await reopened.open()
    try:
        versions = await reopened.list_versions("orders-value")
        assert [v.version for v in versions] == list(range(1, 41))
        five = await get_version_with_schema(reopened, "orders-value", 5)
        assert five is not None
        assert five[1].schema == avro_record("Order5", "id")
        assert_consistent(await reopened.snapshot())
    finally:
        await reopened.close()
