"""Data contracts end to end: the example contract applied with kubectl through the real webhook into
`kschema run`, executed by unmodified confluent-kafka clients with their CEL, CEL_FIELD and JSONata
executors; every admission refusal seen through `kubectl apply` and `--dry-run=server`, and the same
sentence from `kschema check` offline."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from tests.e2e.operator_harness import wait_ready
from tests.e2e.test_kschema_run import NAMESPACE, Running, kschema, own_cluster  # noqa: F401 (fixtures)
from tests.harness.contracts import (
    CONTRACT_EXAMPLE,
    SUBJECT,
    example_documents,
    inference,
    register_executors,
)

pytestmark = pytest.mark.cluster

CTX = SerializationContext("llm-inference", MessageField.VALUE)


def _apply_contract(running: Running) -> None:
    running.cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(CONTRACT_EXAMPLE))
    wait_ready(running.cluster, NAMESPACE)


def _post(running: Running, path: str, body: Any) -> Any:
    request = urllib.request.Request(
        running.api + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_clients_execute_the_contract_declared_in_git(kschema: Running) -> None:  # noqa: F811
    _apply_contract(kschema)
    register_executors()

    def serializer(major: str) -> Any:
        conf = {"auto.register.schemas": False, "use.latest.with.metadata": {"major_version": major}}
        return AvroSerializer(SchemaRegistryClient({"url": kschema.api}), None, conf=conf)

    def deserializer(major: str | None = None) -> Any:
        conf = {"use.latest.with.metadata": {"major_version": major}} if major else {}
        return AvroDeserializer(SchemaRegistryClient({"url": kschema.api}), conf=conf)

    with pytest.raises(SerializationError) as caught:
        serializer("1")(inference(tokens=-1), CTX)
    assert "tokensNonNegative" in str(caught.value.__cause__)

    old = serializer("1")(inference(), CTX)
    assert deserializer()(old, CTX)["user_email"] == "***"  # masked on write by the CEL_FIELD rule
    assert deserializer("2")(old, CTX)["model_name"] == "llama-3"  # upgraded by JSONata
    new = serializer("2")(
        {"request_id": "r-2", "model_name": "gpt", "tokens": 7, "user_email": "x@example.com"}, CTX
    )
    assert deserializer("1")(new, CTX)["model"] == "gpt"  # downgraded


def test_the_validate_endpoint_names_the_rule_a_payload_breaks(kschema: Running) -> None:  # noqa: F811
    _apply_contract(kschema)
    one = _post(kschema, f"/kschema/v1/subjects/{SUBJECT}/versions/1/validate", inference(tokens=-5))
    assert one["valid"] is False
    assert [e.get("rule") for e in one["errors"]] == ["tokensNonNegative"]
    batch = _post(
        kschema,
        f"/kschema/v1/subjects/{SUBJECT}/versions/1/validate/batch",
        {"payloads": [inference(), inference(model=""), {"tokens": "many"}]},
    )
    assert batch["valid"] == 1
    assert [r["valid"] for r in batch["results"]] == [True, False, False]
    assert batch["results"][1]["errors"][0]["rule"] == "modelNamed"


def _v3(**spec: Any) -> dict[str, Any]:
    v2 = next(d for d in example_documents() if d["kind"] == "Schema" and d["spec"]["version"] == 2)
    doc = copy.deepcopy(v2)
    doc["metadata"] = {"name": "llm-inference-v3", "namespace": NAMESPACE}
    doc["spec"]["version"] = 3
    doc["spec"].update(spec)
    return doc


def _rules(*rules: dict[str, Any], migration: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"domainRules": list(rules)}
    if migration is not None:
        out["migrationRules"] = migration
    return out


REFUSALS = {
    "unknown kind": (
        _v3(ruleSet=_rules({"name": "r", "kind": "ASSERT", "type": "CEL", "expr": "true"})),
        "unknown rule kind 'ASSERT'",
    ),
    "unknown mode": (
        _v3(ruleSet=_rules({"name": "r", "mode": "ALWAYS", "type": "CEL", "expr": "true"})),
        "unknown rule mode 'ALWAYS'",
    ),
    "unknown type": (
        _v3(ruleSet=_rules({"name": "r", "type": "LUA", "expr": "true"})),
        "unknown rule type 'LUA'",
    ),
    "duplicate name": (
        _v3(
            ruleSet=_rules(
                {"name": "r", "type": "CEL", "expr": "true"}, {"name": "r", "type": "CEL", "expr": "true"}
            )
        ),
        "duplicate rule name 'r'",
    ),
    "missing field": (
        _v3(ruleSet=_rules({"name": "r", "kind": "CONDITION", "type": "CEL", "expr": "message.cost > 0"})),
        "(rule 'r').expr: message.cost: the schema has no field 'cost'",
    ),
    "wrong type": (
        _v3(
            ruleSet=_rules(
                {"name": "r", "kind": "CONDITION", "type": "CEL", "expr": "message.model_name > 0"}
            )
        ),
        "message.model_name is a string but is compared ('>') with an int literal",
    ),
    "tag on a missing field": (
        _v3(
            metadata={"properties": {"major_version": "2"}, "tags": {"ai.telemetry.Inference.email": ["PII"]}}
        ),
        "path 'ai.telemetry.Inference.email' names no field",
    ),
    "migration without a group": (
        _v3(
            metadata={"properties": {"owner": "x"}},
            ruleSet=_rules(migration=[{"name": "up", "mode": "UPGRADE", "type": "JSONATA", "expr": "$"}]),
        ),
        "no metadata property 'major_version'",
    ),
    "bad jsonata": (
        _v3(
            ruleSet=_rules(
                migration=[{"name": "up", "mode": "UPGRADE", "type": "JSONATA", "expr": "$merge(["}]
            )
        ),
        "(rule 'up').expr: is not valid JSONata",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_wrong_contract_is_refused_by_kubectl_and_by_kschema_check(
    kschema: Running,  # noqa: F811
    case: str,
    tmp_path: Path,
) -> None:
    _apply_contract(kschema)
    doc, expected = REFUSALS[case]
    manifest = json.dumps(doc)
    for extra in (("--dry-run=server",), ()):
        done = kschema.cluster.kubectl("apply", *extra, "-f", "-", input=manifest, check=False)
        assert done.returncode != 0, done.stdout
        assert "denied the request" in done.stderr
        assert expected in done.stderr
    # Offline, with the Subject and the other versions beside it, as in the Git repository.
    (tmp_path / "contract.yaml").write_text(CONTRACT_EXAMPLE.read_text())
    # The example manifests carry no namespace; the offline v3 sits beside them in the same one.
    (tmp_path / "v3.yaml").write_text(yaml.safe_dump({**doc, "metadata": {"name": doc["metadata"]["name"]}}))
    offline = subprocess.run(
        [str(Path(sys.executable).parent / "kschema"), "check", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert offline.returncode == 1
    assert expected in offline.stdout + offline.stderr


def test_rules_are_immutable_with_their_version(kschema: Running) -> None:  # noqa: F811
    _apply_contract(kschema)
    patch: dict[str, Any] = {"spec": {"ruleSet": {"domainRules": []}}}
    done = kschema.cluster.kubectl(
        "patch",
        "-n",
        NAMESPACE,
        "schema",
        "llm-inference-v1",
        "--type=merge",
        "-p",
        json.dumps(patch),
        check=False,
    )
    assert done.returncode != 0
    assert "spec.ruleSet" in done.stderr
