"""Bearer-token authentication of the read API, end to end: a real `kschema api` process reviews tokens that
the real API server issued (`kubectl create token --audience`) through the TokenReview API, and the
Confluent client (`confluent-kafka`, `bearer.auth.credentials.source: STATIC_TOKEN`) is refused or
served in Confluent's error shape."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from kschema.compat import CompatibilityLevel
from kschema.devcluster.controlplane import free_port
from kschema.formats import SchemaFormat, parse_schema
from kschema.store import NewVersion, SubjectRecord
from kschema.store.sqlite import SqliteStore
from tests.harness.cluster import Cluster

pytestmark = pytest.mark.cluster

AUDIENCE = "kschema-auth-test"
SUBJECT = "orders-value"
ORDER_V1 = json.dumps(
    {"type": "record", "name": "Order", "fields": [{"name": "id", "type": "string"}]}, separators=(",", ":")
)
ORDER_V2 = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "fields": [{"name": "id", "type": "string"}, {"name": "note", "type": "string", "default": ""}],
    },
    separators=(",", ":"),
)


@dataclass
class Api:
    url: str
    log: Path


async def _seed(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        await store.upsert_subject(
            SubjectRecord(SUBJECT, "team", SchemaFormat.AVRO, CompatibilityLevel.BACKWARD, deleted=False)
        )
        parsed = parse_schema(SchemaFormat.AVRO, ORDER_V1, ())
        await store.register(
            NewVersion(
                subject=SUBJECT,
                version=1,
                namespace="team",
                format=SchemaFormat.AVRO,
                schema=ORDER_V1,
                canonical=parsed.canonical,
                fingerprint=parsed.fingerprint,
            )
        )
    finally:
        await store.close()


def _start_api(cluster: Cluster, work: Path, mode: str, allowed: str) -> Iterator[Api]:
    asyncio.run(_seed(work / "registry.db"))
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "KSCHEMA_STORE_URL": f"sqlite:///{work / 'registry.db'}",
        "KSCHEMA_API_HOST": "127.0.0.1",
        "KSCHEMA_API_PORT": str(port),
        "KSCHEMA_API_AUTH": mode,
        "KSCHEMA_API_AUTH_AUDIENCE": AUDIENCE,
        "KSCHEMA_API_AUTH_SERVICE_ACCOUNTS": allowed,
    }
    log = work / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "kschema"), "api"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"kschema api did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield Api(url, log)
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Tokens:
    allowed: str
    other: str
    allowed_for_the_api_server: str


@pytest.fixture
def tokens(cluster: Cluster, namespace: str) -> Tokens:
    for account in ("reader", "stranger"):
        cluster.kubectl("create", "serviceaccount", "-n", namespace, account)

    def token(account: str, *audience: str) -> str:
        return cluster.kubectl("create", "token", "-n", namespace, account, *audience).stdout.strip()

    return Tokens(
        allowed=token("reader", f"--audience={AUDIENCE}"),
        other=token("stranger", f"--audience={AUDIENCE}"),
        allowed_for_the_api_server=token("reader"),
    )


@pytest.fixture
def api_all(cluster: Cluster, namespace: str, tmp_path: Path, tokens: Tokens) -> Iterator[Api]:
    yield from _start_api(cluster, tmp_path, "all", f"{namespace}/reader")


@pytest.fixture
def api_checks(cluster: Cluster, namespace: str, tmp_path: Path, tokens: Tokens) -> Iterator[Api]:
    yield from _start_api(cluster, tmp_path, "checks", f"{namespace}/reader")


def _client(api: Api, token: str | None) -> SchemaRegistryClient:
    conf: dict[str, object] = {"url": api.url}
    if token is not None:
        conf |= {
            "bearer.auth.credentials.source": "STATIC_TOKEN",
            "bearer.auth.token": token,
            # The client insists on these Confluent Cloud headers; kschema ignores them.
            "bearer.auth.logical.cluster": "lsrc-kschema",
            "bearer.auth.identity.pool.id": "pool-kschema",
        }
    return SchemaRegistryClient(conf)


def _refusal(call: object) -> tuple[int, int, str]:
    assert callable(call)
    with pytest.raises(SchemaRegistryError) as refused:
        call()
    error = refused.value
    return error.http_status_code, error.error_code, error.error_message


def test_the_allowed_service_account_is_served_with_its_token(api_all: Api, tokens: Tokens) -> None:
    client = _client(api_all, tokens.allowed)

    assert client.get_subjects() == [SUBJECT]
    assert client.get_latest_version(SUBJECT).version == 1
    assert client.test_compatibility(SUBJECT, Schema(ORDER_V2, "AVRO")) is True


def test_another_service_account_gets_403_in_confluents_shape(
    api_all: Api, tokens: Tokens, namespace: str
) -> None:
    client = _client(api_all, tokens.other)

    status, code, message = _refusal(client.get_subjects)
    assert (status, code) == (403, 40301)
    assert f"system:serviceaccount:{namespace}:stranger" in message
    status, code, _ = _refusal(lambda: client.test_compatibility(SUBJECT, Schema(ORDER_V2, "AVRO")))
    assert (status, code) == (403, 40301)


def test_no_token_a_bad_token_or_one_for_another_audience_gets_401(api_all: Api, tokens: Tokens) -> None:
    for token in (None, "not-a-token", tokens.allowed + "x", tokens.allowed_for_the_api_server):
        status, code, message = _refusal(_client(api_all, token).get_subjects)
        assert (status, code) == (401, 40101), token
        assert message.startswith("Unauthorized")


def test_health_and_metrics_stay_open_for_probes_and_scrapers(api_all: Api) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        with urllib.request.urlopen(api_all.url + path, timeout=5) as response:
            assert response.status == 200, path


def test_in_checks_mode_reads_are_open_and_the_check_endpoints_need_a_token(
    api_checks: Api, tokens: Tokens
) -> None:
    anonymous = _client(api_checks, None)

    assert anonymous.get_subjects() == [SUBJECT]
    status, code, _ = _refusal(lambda: anonymous.test_compatibility(SUBJECT, Schema(ORDER_V2, "AVRO")))
    assert (status, code) == (401, 40101)
    request = urllib.request.Request(
        f"{api_checks.url}/kschema/v1/subjects/{SUBJECT}/versions/1/validate",
        data=b'{"id": "a"}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["error_code"] == 40101
    assert _client(api_checks, tokens.allowed).test_compatibility(SUBJECT, Schema(ORDER_V2, "AVRO")) is True
