"""The cluster-wide default compatibility level: Subjects without `spec.compatibility` inherit it in the
model (webhook, operator, `kschema check`), the store keeps whether a level was declared, and the read API
answers `GET /config` with it and `GET /config/{subject}` with 40408 for a subject that sets none."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import kopf
import pytest

from kschema.cli.check import check
from kschema.compat import CompatibilityLevel
from kschema.compute import WorkerPool
from kschema.formats import SchemaFormat
from kschema.model import SUBJECT_KIND, SubjectSpec, subject_from_body
from kschema.operator.context import OperatorContext
from kschema.operator.indexes import index_subject
from kschema.operator.registration import upsert_subject
from kschema.operator.settings import OperatorSettings
from kschema.policy import Decision
from kschema.runtime.config import ConfigError, add_options, load_config
from kschema.store import RegistryStore, SubjectRecord
from kschema.store.sqlite import SqliteStore
from kschema.webhook.app import Reviewer, _decide
from kschema.webhook.settings import WebhookSettings
from tests.unit.api_memory_store import MemoryStore, api_client, caught_up

ORDER_V1 = {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "string"}]}
# Adds a field without a default: BACKWARD refuses it, FORWARD accepts it.
ORDER_V2 = {
    "type": "record",
    "name": "Order",
    "fields": [{"name": "id", "type": "string"}, {"name": "cost", "type": "int"}],
}


def _subject(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kschema.io/v1alpha1",
        "kind": "Subject",
        "metadata": {"name": "orders-value", "namespace": "shop"},
        "spec": {"format": "AVRO", **spec},
    }


# Model ----------------------------------------------------------------------------------------------
def test_a_subject_without_a_level_inherits_the_default() -> None:
    spec = subject_from_body(_subject(), CompatibilityLevel.FULL)
    assert spec.compatibility is CompatibilityLevel.FULL
    assert not spec.compatibility_declared


def test_a_declared_level_wins_over_the_default() -> None:
    spec = subject_from_body(_subject(compatibility="NONE"), CompatibilityLevel.FULL)
    assert spec.compatibility is CompatibilityLevel.NONE
    assert spec.compatibility_declared


# Runtime configuration ----------------------------------------------------------------------------------
def _config(*argv: str, env: dict[str, str] | None = None) -> Any:
    parser = argparse.ArgumentParser()
    add_options(parser)
    return load_config(("api", "operator"), parser.parse_args(list(argv)), env=env or {})


def test_one_setting_reaches_the_operator_the_webhook_and_the_read_api() -> None:
    config = _config("--default-compatibility", "full_transitive")
    assert config.operator.default_compatibility is CompatibilityLevel.FULL_TRANSITIVE
    assert config.webhook.default_compatibility is CompatibilityLevel.FULL_TRANSITIVE
    assert config.api.global_compatibility is CompatibilityLevel.FULL_TRANSITIVE


def test_the_environment_variable_sets_it_and_backward_is_the_default() -> None:
    assert (
        _config(env={"KSCHEMA_DEFAULT_COMPATIBILITY": "FORWARD"}).api.global_compatibility.value == "FORWARD"
    )
    assert _config().operator.default_compatibility is CompatibilityLevel.BACKWARD


def test_an_unknown_level_is_refused_naming_the_flag_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"--default-compatibility \(KSCHEMA_DEFAULT_COMPATIBILITY\).*FULL"):
        _config("--default-compatibility", "SOMETIMES")


# Store ----------------------------------------------------------------------------------------------
async def test_the_store_keeps_whether_a_level_was_declared(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "registry.db")
    await store.open()
    try:
        inherited = SubjectRecord(
            "orders-value", "shop", SchemaFormat.AVRO, CompatibilityLevel.FULL, False, "", False
        )
        await store.upsert_subject(inherited)
        found = await store.get_subject("orders-value")
        assert found is not None
        assert not found.compatibility_declared
        await store.upsert_subject(replace(inherited, compatibility_declared=True))
        again = await store.get_subject("orders-value")
        assert again is not None
        assert again.compatibility_declared
    finally:
        await store.close()


# Read API -------------------------------------------------------------------------------------------
async def test_the_read_api_serves_the_inherited_level_only_as_the_global_config() -> None:
    store = MemoryStore()
    await store.add("orders-value", 1, json.dumps(ORDER_V1))
    record = store.subjects["orders-value"]
    await store.upsert_subject(replace(record, compatibility_declared=False))
    async with api_client(store, global_compatibility=CompatibilityLevel.FORWARD) as client:
        await caught_up(client, store)
        assert await (await client.get("/config")).json() == {"compatibilityLevel": "FORWARD"}
        missing = await client.get("/config/orders-value")
        assert missing.status == 404
        assert (await missing.json())["error_code"] == 40408
        inherited = await client.get("/config/orders-value?defaultToGlobal=true")
        assert await inherited.json() == {"compatibilityLevel": "FORWARD"}
        # The compatibility endpoint checks at the inherited level: FORWARD accepts the new field.
        check_v2 = await client.post(
            "/compatibility/subjects/orders-value/versions/latest", json={"schema": json.dumps(ORDER_V2)}
        )
        assert await check_v2.json() == {"is_compatible": True}
        await store.upsert_subject(replace(record, compatibility=CompatibilityLevel.BACKWARD))
        await caught_up(client, store)
        assert await (await client.get("/config/orders-value")).json() == {"compatibilityLevel": "BACKWARD"}


# kschema check ----------------------------------------------------------------------------------------
def _tree(tmp_path: Path) -> Path:
    documents = [_subject()]
    for version, schema in ((1, ORDER_V1), (2, ORDER_V2)):
        documents.append(
            {
                "apiVersion": "kschema.io/v1alpha1",
                "kind": "Schema",
                "metadata": {"name": f"orders-value-v{version}", "namespace": "shop"},
                "spec": {"subject": "orders-value", "version": version, "schema": json.dumps(schema)},
            }
        )
    path = tmp_path / "orders.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
    return path


def test_check_applies_the_default_level_to_subjects_without_one(tmp_path: Path) -> None:
    path = _tree(tmp_path)
    refused = check([str(path)], namespace="shop", default_compatibility=CompatibilityLevel.BACKWARD)
    accepted = check([str(path)], namespace="shop", default_compatibility=CompatibilityLevel.FORWARD)
    assert [f.message for f in refused.findings if f.severity == "refused"]
    assert not [f for f in accepted.findings if f.severity == "refused"]


def test_check_reads_the_level_from_the_flag_or_the_environment(tmp_path: Path) -> None:
    path = _tree(tmp_path)
    command = [sys.executable, "-m", "kschema.cli.main", "check", str(path), "-n", "shop"]
    env = {**os.environ, "KSCHEMA_DEFAULT_COMPATIBILITY": "FORWARD"}
    by_env = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)
    by_flag = subprocess.run(
        [*command, "--default-compatibility", "BACKWARD"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert by_env.returncode == 0, by_env.stdout + by_env.stderr
    assert by_flag.returncode == 1, by_flag.stdout + by_flag.stderr


# Webhook and operator --------------------------------------------------------------------------------
class _RecordingReviewer(Reviewer):
    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.seen: list[SubjectSpec | None] = []

    async def review_subject(self, new: SubjectSpec | None, old: SubjectSpec | None) -> Decision:
        self.seen.append(new)
        return Decision()


async def test_the_webhook_reviews_an_inherited_subject_at_its_default_level() -> None:
    settings = WebhookSettings(
        Path("tls.crt"), Path("tls.key"), default_compatibility=CompatibilityLevel.FULL
    )
    reviewer = _RecordingReviewer(settings)
    request = {"operation": "CREATE", "namespace": "shop", "object": _subject()}
    await _decide(reviewer, SUBJECT_KIND, request)
    assert reviewer.seen[0] is not None
    assert reviewer.seen[0].compatibility is CompatibilityLevel.FULL
    assert not reviewer.seen[0].compatibility_declared


async def test_the_operator_indexes_and_stores_an_inherited_subject_with_its_default_level() -> None:
    memo = OperatorContext(
        OperatorSettings(default_compatibility=CompatibilityLevel.FORWARD),
        cast(RegistryStore, None),
        cast(WorkerPool, None),
    )
    raw: kopf.RawBody = {**_subject(), "metadata": {**_subject()["metadata"], "uid": "u1"}}  # type: ignore[typeddict-item]  # a plain manifest
    body = kopf.Body(raw)
    indexed = await index_subject("shop", "orders-value", body, body.meta, body.status, memo=memo)
    entry = indexed[("shop", "orders-value")]
    assert entry.spec.compatibility is CompatibilityLevel.FORWARD
    store = MemoryStore()
    record = await upsert_subject(store, entry.spec)
    assert record.compatibility is CompatibilityLevel.FORWARD
    assert not record.compatibility_declared
