"""Third-party Schema Registry clients in other languages against the read API over HTTP, in all three
formats: confluent-kafka-go's schemaregistry client and serdes (Avro, JSON Schema with validation,
Protobuf), and for Node Confluent's `@confluentinc/schemaregistry` and `@kafkajs/confluent-schema-registry`.
Each client program (tests/clients/) takes the subject's latest version without registering anything,
writes a record in the Confluent wire format, reads it back and prints what it saw.
`dev/clients/build.sh` builds them into the user cache."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kschema.formats import SchemaFormat
from tests.integration.test_api_clients import Registry, registry

__all__ = ["registry"]  # the read API fixture, shared with the Python client tests

REPO = Path(__file__).parents[2]
BUILD = REPO / "dev" / "clients" / "build.sh"

ORDER_V1 = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [{"name": "id", "type": "string"}],
}
ORDER_V2 = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [{"name": "id", "type": "string"}, {"name": "qty", "type": "int", "default": 1}],
}
EVENT = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Event",
    "type": "object",
    "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
    "required": ["name", "count"],
}
PAYMENT = (
    'syntax = "proto3";\npackage kschema_clients;\n\n'
    "// A payment, as its author formatted it.\nmessage Payment {\n  string id = 1;\n  int32 cents = 2;\n}\n"
)

# format -> (schema text, kschema format, record)
CASES: dict[str, tuple[str, SchemaFormat, dict[str, Any]]] = {
    "avro": (json.dumps(ORDER_V2, indent=2), SchemaFormat.AVRO, {"id": "o-1", "qty": 3}),
    "json": (json.dumps(EVENT, indent=2), SchemaFormat.JSON, {"name": "shipped", "count": 2}),
    "protobuf": (PAYMENT, SchemaFormat.PROTOBUF, {"id": "p-1", "cents": 250}),
}


def _build(what: str) -> str:
    done = subprocess.run(
        ["bash", str(BUILD), what], capture_output=True, text=True, timeout=1500, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def go_client() -> list[str]:
    return [_build("go")]


@pytest.fixture(scope="module")
def node_modules() -> str:
    return _build("node")


async def _run(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    # Asynchronous: the read API serves from this test's event loop.
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def _registered(registry: Registry, fmt: str) -> tuple[int, dict[str, Any]]:
    text, kind, record = CASES[fmt]
    if kind is SchemaFormat.AVRO:
        await registry.add(f"{fmt}-topic-value", 1, json.dumps(ORDER_V1))
    latest = await registry.add(f"{fmt}-topic-value", 2 if kind is SchemaFormat.AVRO else 1, text, kind)
    await registry.served(latest.subject, latest.version)
    return latest.schema_id, record


@pytest.mark.parametrize("fmt", list(CASES))
async def test_confluent_kafka_go_serdes_round_trip(
    registry: Registry, go_client: list[str], fmt: str
) -> None:
    schema_id, record = await _registered(registry, fmt)
    seen = await _run([*go_client, registry.url, fmt, f"{fmt}-topic", json.dumps(record)])
    assert seen == {"format": fmt, "schema_id": schema_id, "latest_id": schema_id, "record": record}


@pytest.mark.parametrize("fmt", list(CASES))
@pytest.mark.parametrize("script", ["client-confluent.js", "client.js"], ids=["confluentinc", "kafkajs"])
async def test_node_schema_registry_clients_round_trip(
    registry: Registry, node_modules: str, script: str, fmt: str
) -> None:
    schema_id, record = await _registered(registry, fmt)
    program = str(REPO / "tests" / "clients" / "node" / script)
    seen = await _run(
        ["node", program, registry.url, fmt, f"{fmt}-topic", json.dumps(record)],
        env={"NODE_PATH": node_modules, "PATH": "/usr/local/bin:/usr/bin:/bin"},
    )
    assert seen == {"format": fmt, "schema_id": schema_id, "latest_id": schema_id, "record": record}
