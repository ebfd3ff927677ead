"""Data contracts executed by unmodified Confluent clients (`confluent-kafka[rules]` with its CEL, CEL_FIELD
and JSONata executors) against the read API, backed by a real SQLite store holding the example contract
as the operator registers it (merged with the Subject's defaults, identity covering the rules).

The same flows against versions applied through the real webhook and operator are in
`tests/e2e/test_contracts.py`."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.rules.dlq.dlq_action import DlqAction
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from kschema.api import ApiSettings, create_app
from kschema.api.server import app_runner
from kschema.api.state import INDEX
from kschema.contracts import contract_fingerprint, registered_contracts, rule_set_from_json
from kschema.formats import SchemaFormat, parse_schema
from kschema.model import SchemaSpec, SubjectSpec, schema_from_body, subject_from_body
from kschema.store import NewVersion, SubjectRecord
from kschema.store.sqlite import SqliteStore
from tests.harness.contracts import SUBJECT, example_documents, inference, register_executors

CTX = SerializationContext("llm-inference", MessageField.VALUE)


async def register(store: SqliteStore, subject: SubjectSpec, schemas: list[SchemaSpec]) -> None:
    """Registers a Subject and its Schemas the way the operator does."""
    await store.upsert_subject(
        SubjectRecord(
            subject=subject.name,
            namespace=subject.namespace,
            format=subject.format,
            compatibility=subject.compatibility,
            deleted=False,
            contract=subject.contract,
        )
    )
    contracts = registered_contracts(subject.contract, [(s.version, s.contract) for s in schemas])
    for spec in schemas:
        parsed = parse_schema(SchemaFormat.AVRO, spec.schema)
        await store.register(
            NewVersion(
                subject=subject.name,
                version=spec.version,
                namespace=subject.namespace,
                format=subject.format,
                schema=spec.schema,
                canonical=parsed.canonical,
                fingerprint=contract_fingerprint(parsed.fingerprint, contracts[spec.version]),
                contract=contracts[spec.version],
            )
        )


def example() -> tuple[SubjectSpec, list[SchemaSpec]]:
    docs = example_documents()
    subject = subject_from_body(next(d for d in docs if d["kind"] == "Subject"))
    return subject, [schema_from_body(d) for d in docs if d["kind"] == "Schema"]


def with_failure_action(
    subject: SubjectSpec, schema: SchemaSpec, name: str, action: str
) -> tuple[SubjectSpec, SchemaSpec]:
    """The example's v1 under another subject name, with its tokens rule's onFailure replaced."""
    raw = schema.contract.rule_set.to_json() if schema.contract.rule_set else {}
    for rule in raw["domainRules"]:
        if rule["name"] == "tokensNonNegative":
            rule["onFailure"] = action
            rule["params"] = {"dlq.topic": "llm-inference-dlq"}
    contract = dataclasses.replace(schema.contract, rule_set=rule_set_from_json(raw, "ruleSet"))
    return (
        dataclasses.replace(subject, name=name, resource_name=name),
        dataclasses.replace(schema, subject=name, contract=contract),
    )


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[str]:
    register_executors()
    store = SqliteStore(tmp_path / "registry.db")
    await store.open()
    subject, schemas = example()
    await register(store, subject, schemas)
    for action in ("NONE", "DLQ"):
        other_subject, other_schema = with_failure_action(
            subject, schemas[0], f"llm-{action.lower()}-value", action
        )
        await register(store, other_subject, [other_schema])
    app = create_app(ApiSettings(host="127.0.0.1", feed_wait_seconds=0.5), store)
    runner = app_runner(app)  # as `kschema api` serves it
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not app[INDEX].loaded or app[INDEX].latest(SUBJECT, False) is None:
            assert loop.time() < deadline, "the API did not serve the example"
            await asyncio.sleep(0.01)
        yield url
    finally:
        await runner.cleanup()
        await store.close()


def serializer(url: str, major: str, subject: str = SUBJECT) -> Any:
    conf: dict[str, Any] = {
        "auto.register.schemas": False,
        "use.latest.with.metadata": {"major_version": major},
    }
    if subject != SUBJECT:
        conf["subject.name.strategy"] = lambda ctx, record_name: subject
    return AvroSerializer(SchemaRegistryClient({"url": url}), None, conf=conf)


def deserializer(url: str, major: str | None = None) -> Any:
    conf = {"use.latest.with.metadata": {"major_version": major}} if major else {}
    return AvroDeserializer(SchemaRegistryClient({"url": url}), conf=conf)


async def test_the_read_api_serves_metadata_and_rules_as_confluent_does(registry: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{registry}/subjects/{SUBJECT}/metadata", params={"key": "major_version", "value": "1"}
        ) as r:
            v1 = await r.json()
        async with session.get(f"{registry}/schemas/ids/{v1['id']}") as r:
            by_id = await r.json()
        async with session.get(f"{registry}/config/{SUBJECT}") as r:
            config = await r.json()
    assert v1["version"] == 1
    # The Subject's defaultMetadata is merged under the version's own metadata at registration.
    assert v1["metadata"]["properties"] == {"major_version": "1", "owner": "ml-platform"}
    assert "tags" not in v1["metadata"]  # empty parts are left out, as Confluent does
    assert [r["name"] for r in v1["ruleSet"]["domainRules"]] == ["maskPii", "tokensNonNegative", "modelNamed"]
    assert by_id["ruleSet"] == v1["ruleSet"]
    assert by_id["metadata"] == v1["metadata"]
    assert config["compatibilityGroup"] == "major_version"
    assert config["defaultMetadata"] == {"properties": {"owner": "ml-platform"}}


async def test_a_serializer_refuses_a_record_that_breaks_a_condition_naming_the_rule(registry: str) -> None:
    ser = serializer(registry, "1")
    # The Python client raises a bare SerializationError caused by the rule's RuleConditionError, whose
    # message is the rule's doc.
    with pytest.raises(SerializationError) as caught:
        await asyncio.to_thread(ser, inference(tokens=-1), CTX)
    assert "tokensNonNegative" in str(caught.value.__cause__)
    with pytest.raises(SerializationError) as caught:
        await asyncio.to_thread(ser, inference(model=""), CTX)
    assert "modelNamed" in str(caught.value.__cause__)


async def test_the_pii_field_is_masked_on_write(registry: str) -> None:
    frame = await asyncio.to_thread(serializer(registry, "1"), inference(), CTX)
    read = await asyncio.to_thread(deserializer(registry), frame, CTX)
    assert read == inference(user_email="***")


async def test_a_consumer_of_v2_reads_v1_events_upgraded_and_a_consumer_of_v1_reads_v2_downgraded(
    registry: str,
) -> None:
    old = await asyncio.to_thread(serializer(registry, "1"), inference(), CTX)
    new = await asyncio.to_thread(
        serializer(registry, "2"), {**_without_model(inference()), "model_name": "gpt"}, CTX
    )

    upgraded = await asyncio.to_thread(deserializer(registry, "2"), old, CTX)
    downgraded = await asyncio.to_thread(deserializer(registry, "1"), new, CTX)

    assert upgraded == {"request_id": "r-1", "model_name": "llama-3", "tokens": 42, "user_email": "***"}
    assert downgraded == {"request_id": "r-1", "model": "gpt", "tokens": 42, "user_email": "***"}


def _without_model(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "model"}


async def test_on_failure_none_lets_the_record_through(registry: str) -> None:
    frame = await asyncio.to_thread(serializer(registry, "1", "llm-none-value"), inference(tokens=-1), CTX)
    assert (await asyncio.to_thread(deserializer(registry), frame, CTX))["tokens"] == -1


class _RecordingProducer(Producer):
    """A real producer that also records the topic of every record handed to it."""

    def __init__(self, conf: dict[str, Any]) -> None:
        super().__init__(conf)
        self.topics: list[str] = []

    def produce(self, topic: str, *args: Any, **kwargs: Any) -> None:
        self.topics.append(topic)
        super().produce(topic, *args, **kwargs)


async def test_on_failure_dlq_sends_the_record_to_the_dead_letter_topic_and_fails_the_call(
    registry: str,
) -> None:
    # A real producer; no broker is reachable, so the DLQ record stays in its queue. What the action hands it
    # is counted at `produce`: the queue's length also counts librdkafka's own protocol requests.
    producer = _RecordingProducer(
        {"bootstrap.servers": "127.0.0.1:9", "message.timeout.ms": 60_000, "log_level": 0}
    )
    DlqAction.register({"producer": producer})
    with pytest.raises(SerializationError, match="Rule failed: tokensNonNegative"):
        await asyncio.to_thread(serializer(registry, "1", "llm-dlq-value"), inference(tokens=-1), CTX)
    assert len(producer.topics) == 1
    producer.purge()
    producer.flush(0)
