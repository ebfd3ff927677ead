"""Moving in from a registry kschema did not write: Apicurio Registry 3.3.3 (its Confluent-compatible API)
is populated through that API, `kschema import` turns it into manifests, `kubectl apply -f DIR` puts them
into a fresh control plane served by `kschema run`, and then every ID, version, level and reference must
match, and a Kafka deserializer must read through kschema the bytes a serializer wrote against Apicurio.

The source carries Apicurio's quirks on purpose: IDs with gaps (the same schema under a second subject),
a level inherited from the global config that Apicurio reports as the subject's own, a history that
breaks its subject's current level, and a referenced version soft-deleted while a live version still
references it (Apicurio's weak guard)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from kschema.devcluster import ControlPlane
from kschema.devcluster.webhook import local_webhook_configuration
from tests.e2e.operator_harness import apply_crds, wait_ready
from tests.e2e.test_kschema_run import Running
from tests.harness.apicurio import Apicurio
from tests.harness.cluster import Cluster
from tests.harness.kschema_run import start_kschema_run, wait_until_ready

pytestmark = pytest.mark.cluster

NAMESPACE = "moved-in"
KSCHEMA = str(Path(sys.executable).parent / "kschema")

ADDRESS = json.dumps(
    {
        "type": "record",
        "name": "Address",
        "namespace": "com.example",
        "fields": [{"name": "street", "type": "string"}, {"name": "city", "type": "string"}],
    }
)


def _customer(email: bool) -> str:
    fields: list[dict[str, Any]] = [
        {"name": "name", "type": "string"},
        {"name": "address", "type": "com.example.Address"},
    ]
    if email:
        fields.append({"name": "email", "type": ["null", "string"], "default": None})
    return json.dumps({"type": "record", "name": "Customer", "namespace": "com.example", "fields": fields})


def _legacy(field_type: str, extra: dict[str, Any] | None = None) -> str:
    fields: list[dict[str, Any]] = [{"name": "a", "type": field_type}]
    if extra:
        fields.append(extra)
    return json.dumps({"type": "record", "name": "Legacy", "fields": fields})


ADDRESS_WITH_ZIP = json.dumps(
    {
        "type": "record",
        "name": "Address",
        "namespace": "com.example",
        "fields": [
            {"name": "street", "type": "string"},
            {"name": "city", "type": "string"},
            {"name": "zip", "type": ["null", "string"], "default": None},
        ],
    }
)
ADDRESS_REF = [{"name": "com.example.Address", "subject": "address-value", "version": 1}]
ORDER_JSON = json.dumps(
    {"type": "object", "properties": {"id": {"type": "string"}}, "additionalProperties": False}
)
EVENT_PROTO = 'syntax = "proto3";\npackage com.example;\n\nmessage Event {\n  string id = 1;\n}\n'
ODD_NAME = "Acme/Orders Value"


@dataclass
class Source:
    registry: Apicurio
    ids: dict[tuple[str, int], int]


def _populate(registry: Apicurio) -> Source:
    """The source's history, through Apicurio's Confluent API; IDs are read back, never assumed."""
    ids: dict[tuple[str, int], int] = {}
    ids["address-value", 1] = registry.register("address-value", ADDRESS)
    ids["address-value", 2] = registry.register("address-value", ADDRESS_WITH_ZIP)
    ids["customer-value", 1] = registry.register("customer-value", _customer(False), references=ADDRESS_REF)
    ids["customer-value", 2] = registry.register("customer-value", _customer(True), references=ADDRESS_REF)
    assert registry.request("PUT", "/config/customer-value", {"compatibility": "FULL"})[0] == 200
    ids["address-copy", 1] = registry.register("address-copy", ADDRESS)  # same ID, uses up a number
    ids["order-json", 1] = registry.register("order-json", ORDER_JSON, "JSON")
    ids["event-proto", 1] = registry.register("event-proto", EVENT_PROTO, "PROTOBUF")
    ids[ODD_NAME, 1] = registry.register(ODD_NAME, _legacy("long"))
    # A history that breaks the level the subject has today.
    assert registry.request("PUT", "/config/legacy-value", {"compatibility": "NONE"})[0] == 200
    ids["legacy-value", 1] = registry.register("legacy-value", _legacy("int"))
    ids["legacy-value", 2] = registry.register("legacy-value", _legacy("string"))
    assert registry.request("PUT", "/config/legacy-value", {"compatibility": "BACKWARD"})[0] == 200
    # Apicurio's weak reference guard: once customer-value v1 is soft-deleted, address-value v1 may be
    # soft-deleted too, although customer-value v2 still references it. (Apicurio stops serving every
    # version of a subject whose versions are all soft-deleted, so address-value keeps a live v2.)
    assert registry.request("DELETE", "/subjects/customer-value/versions/1")[0] == 200
    assert registry.request("DELETE", "/subjects/address-value/versions/1")[0] == 200
    assert ids["address-copy", 1] == ids["address-value", 1]
    return Source(registry, ids)


def _kschema(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([KSCHEMA, *args], capture_output=True, text=True, timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"kschema {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def _same_schema(ours: str, theirs: str) -> bool:
    """The read API serves Avro and JSON Schema compacted, as Confluent does; Protobuf as written."""
    if ours == theirs:
        return True
    try:
        return bool(json.loads(ours) == json.loads(theirs))
    except ValueError:
        return False


def _tree(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.fixture(scope="module")
def source(apicurio: Apicurio) -> Source:
    return _populate(apicurio)


@pytest.fixture(scope="module")
def plane() -> Iterator[Cluster]:
    control_plane = ControlPlane()
    control_plane.start()
    try:
        cluster = Cluster(control_plane)
        apply_crds(cluster)
        cluster.kubectl("create", "namespace", NAMESPACE)
        yield cluster
    finally:
        control_plane.stop()


@pytest.fixture(scope="module")
def kschema(plane: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    work = tmp_path_factory.mktemp("kschema-import-run")
    started = start_kschema_run(plane.kubeconfig, work, ca_name="kschema-import-test-ca")
    process, log = started.process, started.log
    running = Running(plane, process, started.api, log)
    try:
        wait_until_ready(f"{running.api}/readyz", process, log)
        plane.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps(local_webhook_configuration(started.webhook, started.ca_pem, "kschema-import")),
        )
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def imported(source: Source, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("import") / "registry"
    result = _kschema("import", "--from", source.registry.url, "--namespace", NAMESPACE, "--out", str(out))
    assert "Imported 7 subjects and 10 versions" in result.stdout, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def applied(imported: Path, kschema: Running) -> Path:
    """The import, applied as it is with `kubectl apply -f DIR` (the webhook consulted), all Ready."""
    result = kschema.cluster.kubectl("apply", "-f", str(imported), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_ready(kschema.cluster, NAMESPACE, timeout=180)
    return imported


def test_the_import_is_byte_identical_when_run_again(source: Source, imported: Path) -> None:
    before = _tree(imported)

    _kschema("import", "--from", source.registry.url, "--namespace", NAMESPACE, "--out", str(imported))

    assert _tree(imported) == before
    assert "subject-acme-orders-value.yaml" in before
    assert "versions-01-customer-value.yaml" in before  # after the versions it references


def test_skipping_deleted_versions_still_keeps_the_one_a_live_version_references(
    source: Source, tmp_path: Path
) -> None:
    out = tmp_path / "skipped"

    result = _kschema("import", "--from", source.registry.url, "--deleted", "skip", "--out", str(out))

    assert "Imported 7 subjects and 9 versions" in result.stdout
    assert (
        'subject "address-value" version 1 is soft-deleted in the source but subject "customer-value" '
        "version 2 references it: imported as ARCHIVED" in result.stderr
    )
    customer = (
        (out / "versions-00-customer-value.yaml").read_text()
        if (out / "versions-00-customer-value.yaml").exists()
        else ""
    )
    assert "customer-value-v1" not in customer + (out / "versions-01-customer-value.yaml").read_text()
    assert "state: ARCHIVED" in (out / "versions-00-address-value.yaml").read_text()


def test_kschema_check_accepts_the_import_as_it_is(imported: Path) -> None:
    result = _kschema("check", str(imported), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_id_version_level_and_reference_matches_the_source(
    source: Source, applied: Path, kschema: Running
) -> None:
    registry = source.registry
    for (subject, version), schema_id in source.ids.items():
        path = f"/subjects/{quote(subject, safe='')}/versions/{version}?deleted=true"
        _, theirs = registry.request("GET", path)
        status, ours, _ = kschema.get(path)
        assert status == 200, (subject, version, ours)
        assert ours["id"] == schema_id, (subject, version)
        assert _same_schema(ours["schema"], theirs["schema"]), (subject, version)
        assert ours.get("references", []) == theirs.get("references", [])
        status, by_id, _ = kschema.get(f"/schemas/ids/{schema_id}")
        assert status == 200
        assert _same_schema(by_id["schema"], theirs["schema"])
    for subject in ("customer-value", "legacy-value", "order-json", ODD_NAME):
        _, theirs = registry.request("GET", f"/config/{quote(subject, safe='')}")
        _, ours, _ = kschema.get(f"/config/{quote(subject, safe='')}?defaultToGlobal=true")
        assert ours["compatibilityLevel"] == theirs["compatibilityLevel"], subject
    # Soft-deleted versions are ARCHIVED: not listed, their IDs still resolve (checked above).
    assert kschema.get("/subjects/customer-value/versions")[1] == [2]
    assert kschema.get("/subjects/address-value/versions")[1] == [2]
    for name in ("address-value-v1", "customer-value-v1"):
        archived = kschema.cluster.kubectl("get", "schema", "-n", NAMESPACE, name, "-o", "json")
        assert json.loads(archived.stdout)["spec"]["state"] == "ARCHIVED"


def test_verify_finds_no_difference_and_then_the_one_made_on_purpose(
    source: Source, applied: Path, kschema: Running
) -> None:
    same = _kschema(
        "import", "--verify", "--from", source.registry.url, "--against", kschema.api, check=False
    )
    assert (same.returncode, same.stdout.splitlines()[-1:]) == (
        0,
        [f"0 difference(s) between {source.registry.url} and {kschema.api}"],
    ), same.stdout + same.stderr

    # A new version registered in the source after the import (both registries run side by side).
    order_v2 = {"type": "object", "properties": {"id": {"type": "string"}, "note": {"type": "string"}}}
    new_id = source.registry.register("order-json", json.dumps(order_v2), "JSON")
    try:
        differs = _kschema(
            "import", "--verify", "--from", source.registry.url, "--against", kschema.api, check=False
        )
        assert differs.returncode == 1, differs.stdout + differs.stderr
        lines = differs.stdout.splitlines()
        assert 'subject "order-json" version 2: missing in kschema' in lines
        assert 'subject "order-json": listed versions differ: source [1, 2], kschema [1]' in lines
        assert f"schema ID {new_id}: does not resolve in kschema" in lines
    finally:
        assert source.registry.request("DELETE", "/subjects/order-json/versions/2")[0] == 200
        assert source.registry.request("DELETE", "/subjects/order-json/versions/2?permanent=true")[0] == 200


def test_imported_history_is_accepted_and_what_comes_after_is_checked(
    applied: Path, kschema: Running, tmp_path: Path
) -> None:
    subject = json.loads(
        kschema.cluster.kubectl("get", "subject", "-n", NAMESPACE, "legacy-value", "-o", "json").stdout
    )
    assert subject["spec"]["compatibility"] == "BACKWARD"
    assert subject["spec"]["acceptedHistory"] == {"throughVersion": 2}

    def version_3(schema: str) -> Path:
        manifest = {
            "apiVersion": "kschema.io/v1alpha1",
            "kind": "Schema",
            "metadata": {"name": "legacy-value-v3", "namespace": NAMESPACE},
            "spec": {"subject": "legacy-value", "version": 3, "schema": schema},
        }
        path = tmp_path / "v3.json"
        path.write_text(json.dumps(manifest))
        return path

    refused = kschema.cluster.kubectl(
        "apply", "-f", str(version_3(_legacy("string", {"name": "b", "type": "int"}))), check=False
    )
    assert refused.returncode != 0
    assert 'version 3 of subject "legacy-value" is not BACKWARD compatible with version 2' in refused.stderr

    kschema.cluster.kubectl(
        "apply", "-f", str(version_3(_legacy("string", {"name": "b", "type": "int", "default": 0})))
    )
    wait_ready(kschema.cluster, NAMESPACE, "schema/legacy-value-v3")


def test_a_deserializer_reads_through_kschema_what_was_written_against_apicurio(
    source: Source, applied: Path, kschema: Running
) -> None:
    context = SerializationContext("customer", MessageField.VALUE)
    record = {"name": "Ada", "address": {"street": "1 Main St", "city": "Zurich"}, "email": "ada@example.com"}
    serializer = AvroSerializer(
        SchemaRegistryClient({"url": source.registry.url}),
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )
    payload = serializer(record, context)
    assert payload is not None
    assert int.from_bytes(payload[1:5], "big") == source.ids["customer-value", 2]

    deserializer = AvroDeserializer(SchemaRegistryClient({"url": kschema.api}))

    assert deserializer(payload, context) == record
