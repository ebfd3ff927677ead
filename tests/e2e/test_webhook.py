"""The admission webhook behind a real kube-apiserver: kubectl (client-side, server-side and dry-run
applies) meets the verdicts of `kschema.policy`, served over HTTPS by `run_webhook`."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from kschema.compat import CompatibilityLevel
from kschema.devcluster.controlplane import free_port
from kschema.devcluster.pki import CertificateAuthority
from kschema.devcluster.webhook import local_webhook_configuration
from kschema.formats import SchemaFormat, parse_schema
from kschema.store.base import NewVersion, RegistryStore, SubjectRecord
from kschema.store.factory import open_store
from kschema.webhook import SCHEMAS_PATH, SUBJECTS_PATH, WebhookSettings, run_webhook
from tests.harness.cluster import REPO_ROOT, Cluster
from tests.harness.worst_case import REFUSED_BRANCHES, json_ref_dag, wide_any_of

pytestmark = pytest.mark.cluster

T = TypeVar("T")
CONFIG_FILE = REPO_ROOT / "webhook" / "validatingwebhookconfiguration.yaml"


def avro(*fields: tuple[str, Any] | tuple[str, Any, Any], name: str = "Order") -> str:
    out = []
    for f in fields:
        field: dict[str, Any] = {"name": f[0], "type": f[1]}
        if len(f) == 3:
            field["default"] = f[2]
        out.append(field)
    return json.dumps({"type": "record", "name": name, "fields": out})


V1 = avro(("id", "string"))
V2 = avro(("id", "string"), ("cost", "double", 0.0))
# Adding a field without a default: a reader of this version cannot read data written with V2.
V3_BREAKING = avro(("id", "string"), ("cost", "double", 0.0), ("currency", "string"))


@dataclass
class Webhook:
    url: str
    ca_pem: bytes
    store_url: str
    cert_dir: Path
    ca: CertificateAuthority
    prefix: str

    def store(self, action: Callable[[RegistryStore], Coroutine[Any, Any, T]]) -> T:
        """Runs `action` against the webhook's registry store (as the operator would write it)."""

        async def go() -> T:
            store = await open_store(self.store_url)
            try:
                return await action(store)
            finally:
                await store.close()

        return asyncio.run(go())


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", str(REPO_ROOT / "crds"))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/subjects.kschema.io",
        "crd/schemas.kschema.io",
    )


@pytest.fixture(scope="module")
def webhook(cluster: Cluster, crds: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    directory = tmp_path_factory.mktemp("webhook")
    ca = CertificateAuthority("kschema-webhook-test-ca")
    ca.issue("kschema-webhook", hosts=("127.0.0.1",)).write(directory / "tls.crt", directory / "tls.key")
    port = free_port()
    store_url = f"sqlite:///{directory}/registry.db"
    settings = WebhookSettings(
        cert_file=directory / "tls.crt",
        key_file=directory / "tls.key",
        host="127.0.0.1",
        port=port,
        kubeconfig=cluster.kubeconfig,
        tls_reload_interval=0.2,
    )
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        store = await open_store(store_url)
        try:
            await run_webhook(settings, store, stop=stop)
        finally:
            await store.close()

    def serve() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=serve, name="kschema-webhook", daemon=True)
    thread.start()
    prefix = f"wh{uuid.uuid4().hex[:6]}-"
    hook = Webhook(f"https://127.0.0.1:{port}", ca.cert_pem, store_url, directory, ca, prefix)
    config_name = _register(cluster, hook)
    try:
        _wait_until_consulted(cluster, hook)
        yield hook
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", config_name, check=False)
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()
    assert not failure, f"the webhook stopped with {failure[0]!r}"


def _register(cluster: Cluster, hook: Webhook) -> str:
    """Applies the reference configuration, pointed at the local server (as envtest does) and limited to
    this module's namespaces so the rest of the suite is never routed here."""
    name = f"kschema-test-{hook.prefix.rstrip('-')}"
    config = local_webhook_configuration(hook.url, hook.ca_pem, name)
    for entry in config["webhooks"]:
        entry["matchConditions"] = [
            {"name": "test-namespaces-only", "expression": f"request.namespace.startsWith('{hook.prefix}')"}
        ]
    cluster.kubectl("apply", "-f", "-", input=json.dumps(config))
    return name


def _wait_until_consulted(cluster: Cluster, hook: Webhook) -> None:
    """The API server loads new configurations asynchronously: an invalid schema is applied until it is
    refused (each accepted attempt is deleted again)."""
    ns = _create_namespace(cluster, hook)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=subject(ns, "probe"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        name = f"probe-{uuid.uuid4().hex[:6]}"
        attempt = cluster.kubectl(
            "apply", "-n", ns, "-f", "-", input=schema(name, "probe", 1, '{"type": "nope"}'), check=False
        )
        if attempt.returncode != 0:
            assert "is not a valid AVRO schema" in attempt.stderr, attempt.stderr
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
            return
        cluster.kubectl("delete", "-n", ns, "schema", name, check=False)
        time.sleep(0.3)  # pacing between probes only; the condition is the refusal above
    raise AssertionError("the API server never consulted the webhook")


def _create_namespace(cluster: Cluster, hook: Webhook) -> str:
    name = f"{hook.prefix}{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    return name


@pytest.fixture
def ns(cluster: Cluster, webhook: Webhook) -> Iterator[str]:
    name = _create_namespace(cluster, webhook)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def subject(
    ns: str,
    name: str,
    *,
    compatibility: str = "BACKWARD",
    fmt: str = "AVRO",
    registry_name: str | None = None,
) -> str:
    """A Subject whose registry subject string is `<namespace>-<name>` unless given: registry subjects
    are unique across the cluster, and namespaces of earlier tests may still be terminating."""
    spec = {"format": fmt, "compatibility": compatibility, "name": registry_name or f"{ns}-{name}"}
    return json.dumps(
        {"apiVersion": "kschema.io/v1alpha1", "kind": "Subject", "metadata": {"name": name}, "spec": spec}
    )


def schema(
    name: str,
    subject_name: str,
    version: int,
    text: str,
    *,
    state: str | None = None,
    references: list[dict[str, Any]] | None = None,
    pinned_id: int | None = None,
) -> str:
    spec: dict[str, Any] = {"subject": subject_name, "version": version, "schema": text}
    if state:
        spec["state"] = state
    if references:
        spec["references"] = references
    if pinned_id is not None:
        spec["id"] = pinned_id
    return json.dumps(
        {"apiVersion": "kschema.io/v1alpha1", "kind": "Schema", "metadata": {"name": name}, "spec": spec}
    )


def apply(cluster: Cluster, ns: str, manifest: str, *extra: str) -> Any:
    return cluster.kubectl("apply", "-n", ns, *extra, "-f", "-", input=manifest, check=False)


def exists(cluster: Cluster, ns: str, kind: str, name: str) -> bool:
    return cluster.kubectl("get", "-n", ns, kind, name, check=False).returncode == 0


# --------------------------------------------------------------------------------------------------------
# Compatibility


def test_an_incompatible_version_is_refused_with_the_compared_versions_and_nothing_is_stored(
    cluster: Cluster, ns: str
) -> None:
    assert apply(cluster, ns, subject(ns, "orders", registry_name="orders-value")).returncode == 0
    assert apply(cluster, ns, schema("orders-v1", "orders", 1, V1)).returncode == 0
    assert apply(cluster, ns, schema("orders-v2", "orders", 2, V2)).returncode == 0

    refused = apply(cluster, ns, schema("orders-v3", "orders", 3, V3_BREAKING))

    assert refused.returncode != 0
    assert 'admission webhook "schemas.kschema.io" denied the request' in refused.stderr
    assert (
        f'Schema {ns}/orders-v3: version 3 of subject "orders-value" is not BACKWARD compatible '
        "with version 2: /fields/currency:" in refused.stderr
    )
    assert "a reader of version 3 cannot read data written with version 2" in refused.stderr
    assert not exists(cluster, ns, "schema", "orders-v3")


def test_a_server_side_dry_run_gives_the_same_verdict_without_writing(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders"))
    apply(cluster, ns, schema("orders-v1", "orders", 1, V1))

    refused = apply(cluster, ns, schema("orders-v2", "orders", 2, V3_BREAKING), "--dry-run=server")
    accepted = apply(cluster, ns, schema("orders-v2", "orders", 2, V2), "--dry-run=server")

    assert refused.returncode != 0
    assert "is not BACKWARD compatible with version 1" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    assert not exists(cluster, ns, "schema", "orders-v2")


def test_a_server_side_apply_is_reviewed_like_a_client_side_one(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders"), "--server-side")
    assert apply(cluster, ns, schema("orders-v1", "orders", 1, V1), "--server-side").returncode == 0

    refused = apply(cluster, ns, schema("orders-v2", "orders", 2, V3_BREAKING), "--server-side")
    accepted = apply(cluster, ns, schema("orders-v2", "orders", 2, V2), "--server-side")

    assert refused.returncode != 0
    assert "is not BACKWARD compatible with version 1" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr


def test_an_out_of_order_version_is_checked_against_both_neighbours(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders"))
    apply(cluster, ns, schema("orders-v1", "orders", 1, V1))
    # Version 3 arrives first; it only needs to be compatible with version 1 so far.
    assert (
        apply(
            cluster, ns, schema("orders-v3", "orders", 3, avro(("id", "string"), ("cost", "double", 1.0)))
        ).returncode
        == 0
    )

    # A version 2 that version 3 could not read (cost is a string here) is refused as version 3's predecessor.
    refused = apply(
        cluster, ns, schema("orders-v2", "orders", 2, avro(("id", "string"), ("cost", "string", "0")))
    )
    accepted = apply(cluster, ns, schema("orders-v2", "orders", 2, V2))

    assert refused.returncode != 0
    assert (
        f'version 3 of subject "{ns}-orders" (Schema {ns}/orders-v3) would not be BACKWARD compatible '
        "with version 2" in refused.stderr
    )
    assert accepted.returncode == 0, accepted.stderr


def test_a_transitive_level_compares_with_every_declared_version(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders", compatibility="BACKWARD_TRANSITIVE"))
    apply(cluster, ns, schema("orders-v1", "orders", 1, avro(("id", "string"), ("note", "string"))))
    apply(cluster, ns, schema("orders-v2", "orders", 2, avro(("id", "string"))))
    # Reads version 2's data (the default fills `note`) but not version 1's, where `note` is a string.
    v3 = avro(("id", "string"), ("note", "long", 0))

    refused = apply(cluster, ns, schema("orders-v3", "orders", 3, v3))

    assert refused.returncode != 0
    assert "is not BACKWARD_TRANSITIVE compatible with version 1" in refused.stderr
    assert "compatible with version 2" not in refused.stderr


def test_a_draft_version_is_checked_too(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders"))
    apply(cluster, ns, schema("orders-v1", "orders", 1, V1))

    refused = apply(cluster, ns, schema("orders-v2", "orders", 2, V3_BREAKING, state="DRAFT"))

    assert refused.returncode != 0
    assert "is not BACKWARD compatible with version 1" in refused.stderr


# --------------------------------------------------------------------------------------------------------
# Invalid schemas, references, duplicates, immutability


def test_an_invalid_schema_is_refused_with_the_parser_location(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders"))

    refused = apply(cluster, ns, schema("orders-v1", "orders", 1, avro(("id", "strin"))))

    assert refused.returncode != 0
    assert f"Schema {ns}/orders-v1: spec.schema is not a valid AVRO schema: /fields/0/type:" in refused.stderr


def test_a_reference_to_a_missing_version_is_refused_and_a_declared_one_is_accepted(
    cluster: Cluster, ns: str
) -> None:
    address = json.dumps(
        {
            "type": "record",
            "name": "Address",
            "namespace": "com.acme",
            "fields": [{"name": "city", "type": "string"}],
        }
    )
    order = json.dumps(
        {"type": "record", "name": "Order", "fields": [{"name": "ship_to", "type": "com.acme.Address"}]}
    )
    ref = [{"name": "com.acme.Address", "subject": f"{ns}-address", "version": 1}]
    apply(cluster, ns, subject(ns, "orders"))

    missing = apply(cluster, ns, schema("orders-v1", "orders", 1, order, references=ref))
    apply(cluster, ns, subject(ns, "address", registry_name=f"{ns}-address"))
    apply(cluster, ns, schema("address-v1", "address", 1, address))
    accepted = apply(cluster, ns, schema("orders-v1", "orders", 1, order, references=ref))

    assert missing.returncode != 0
    assert f'reference "com.acme.Address" (subject "{ns}-address" version 1) does not exist' in missing.stderr
    assert accepted.returncode == 0, accepted.stderr


def test_a_reference_registered_only_in_the_store_is_accepted(
    cluster: Cluster, ns: str, webhook: Webhook
) -> None:
    address = json.dumps(
        {
            "type": "record",
            "name": "Address",
            "namespace": "com.acme",
            "fields": [{"name": "city", "type": "string"}],
        }
    )
    parsed = parse_schema(SchemaFormat.AVRO, address)
    registered = f"{ns}-legacy-address"
    webhook.store(
        lambda store: store.register(
            NewVersion(
                registered, 1, "elsewhere", SchemaFormat.AVRO, address, parsed.canonical, parsed.fingerprint
            )
        )
    )
    order = json.dumps(
        {"type": "record", "name": "Order", "fields": [{"name": "ship_to", "type": "com.acme.Address"}]}
    )
    apply(cluster, ns, subject(ns, "orders"))

    accepted = apply(
        cluster,
        ns,
        schema(
            "orders-v1",
            "orders",
            1,
            order,
            references=[{"name": "com.acme.Address", "subject": registered, "version": 1}],
        ),
    )

    assert accepted.returncode == 0, accepted.stderr


def test_a_reference_to_another_format_is_refused(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "address", fmt="JSON", registry_name=f"{ns}-address"))
    apply(cluster, ns, schema("address-v1", "address", 1, '{"type": "object"}'))
    apply(cluster, ns, subject(ns, "orders"))

    refused = apply(
        cluster,
        ns,
        schema(
            "orders-v1",
            "orders",
            1,
            V1,
            references=[{"name": "com.acme.Address", "subject": f"{ns}-address", "version": 1}],
        ),
    )

    assert refused.returncode != 0
    assert "points at a JSON schema; a AVRO schema can only refer to AVRO schemas" in refused.stderr


def test_a_duplicate_version_number_is_refused(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders"))
    apply(cluster, ns, schema("orders-v1", "orders", 1, V1))

    refused = apply(cluster, ns, schema("orders-one-again", "orders", 1, V1))

    assert refused.returncode != 0
    assert (
        f'version 1 of subject "{ns}-orders" is already declared by Schema {ns}/orders-v1' in refused.stderr
    )


def test_a_version_number_used_before_in_the_store_is_refused_for_other_content(
    cluster: Cluster, ns: str, webhook: Webhook
) -> None:
    old = parse_schema(SchemaFormat.AVRO, V2)
    registry_name = f"{ns}-orders"

    async def history(store: RegistryStore) -> None:
        await store.register(
            NewVersion(registry_name, 1, ns, SchemaFormat.AVRO, V2, old.canonical, old.fingerprint)
        )
        await store.delete_version(registry_name, 1)

    webhook.store(history)
    apply(cluster, ns, subject(ns, "orders", registry_name=registry_name))

    refused = apply(cluster, ns, schema("orders-v1", "orders", 1, V1))
    restored = apply(cluster, ns, schema("orders-v1", "orders", 1, V2))

    assert refused.returncode != 0
    assert "was registered (since deleted) with other content" in refused.stderr
    assert restored.returncode == 0, restored.stderr


def test_a_content_change_is_refused_and_the_stored_schema_is_unchanged(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders"))
    apply(cluster, ns, schema("orders-v1", "orders", 1, V1))

    refused = apply(cluster, ns, schema("orders-v1", "orders", 1, V2))

    assert refused.returncode != 0
    # The CRD's CEL rule answers before admission webhooks run; the webhook says the same for tools that
    # bypass it (and `kschema check`).
    assert "spec.schema is immutable" in refused.stderr
    stored = json.loads(cluster.kubectl("get", "-n", ns, "schema", "orders-v1", "-o", "json").stdout)
    assert stored["spec"]["schema"] == V1


# --------------------------------------------------------------------------------------------------------
# Ownership, pinned IDs, formats


def test_a_subject_declared_by_another_namespace_is_refused(
    cluster: Cluster, ns: str, webhook: Webhook
) -> None:
    other = _create_namespace(cluster, webhook)
    try:
        apply(cluster, other, subject(other, "orders", registry_name=f"{ns}-shared"))

        refused = apply(cluster, ns, subject(ns, "orders", registry_name=f"{ns}-shared"))

        assert refused.returncode != 0
        assert f'subject "{ns}-shared" is already declared by Subject {other}/orders' in refused.stderr
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_a_subject_owned_by_another_namespace_in_the_store_is_refused(
    cluster: Cluster, ns: str, webhook: Webhook
) -> None:
    registry_name = f"{ns}-owned"
    webhook.store(
        lambda store: store.upsert_subject(
            SubjectRecord(registry_name, "team-b", SchemaFormat.AVRO, CompatibilityLevel.BACKWARD, False)
        )
    )

    refused = apply(cluster, ns, subject(ns, "orders", registry_name=registry_name))

    assert refused.returncode != 0
    assert f'subject "{registry_name}" is owned by namespace team-b in the registry' in refused.stderr


def test_a_pinned_id_held_by_other_content_is_refused(cluster: Cluster, ns: str, webhook: Webhook) -> None:
    holder = parse_schema(SchemaFormat.AVRO, V2)
    registered = webhook.store(
        lambda store: store.register(
            NewVersion(
                f"{ns}-holder", 1, "team-b", SchemaFormat.AVRO, V2, holder.canonical, holder.fingerprint
            )
        )
    )
    apply(cluster, ns, subject(ns, "orders"))

    refused = apply(cluster, ns, schema("orders-v1", "orders", 1, V1, pinned_id=registered.schema_id))
    same_content = apply(cluster, ns, schema("orders-v1", "orders", 1, V2, pinned_id=registered.schema_id))

    assert refused.returncode != 0
    assert f"spec.id {registered.schema_id} is already held by other content" in refused.stderr
    assert same_content.returncode == 0, same_content.stderr


def test_a_format_change_is_refused(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders"))

    refused = apply(cluster, ns, subject(ns, "orders", fmt="JSON"))

    assert refused.returncode != 0
    assert "spec.format is immutable" in refused.stderr or "spec.format cannot change" in refused.stderr


# --------------------------------------------------------------------------------------------------------
# States, warnings, ordering, deletion


def test_state_transitions_follow_the_table(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders"))
    apply(cluster, ns, schema("orders-v1", "orders", 1, V1))
    apply(cluster, ns, schema("orders-v2", "orders", 2, V2))

    deprecated = apply(cluster, ns, schema("orders-v2", "orders", 2, V2, state="DEPRECATED"))
    rolled_back = apply(cluster, ns, schema("orders-v2", "orders", 2, V2, state="ACTIVE"))
    archived = apply(cluster, ns, schema("orders-v1", "orders", 1, V1, state="ARCHIVED"))
    revived = apply(cluster, ns, schema("orders-v1", "orders", 1, V1, state="ACTIVE"))
    to_draft = apply(cluster, ns, schema("orders-v1", "orders", 1, V1, state="DRAFT"))

    assert deprecated.returncode == 0, deprecated.stderr
    assert "is the latest version of subject" in deprecated.stderr  # the warning
    assert rolled_back.returncode == 0, rolled_back.stderr
    assert archived.returncode == 0, archived.stderr
    assert revived.returncode == 0, revived.stderr
    assert to_draft.returncode != 0
    assert "spec.state cannot change from ACTIVE to DRAFT" in to_draft.stderr
    assert "it may change to ARCHIVED or DEPRECATED" in to_draft.stderr


def test_a_schema_before_its_subject_is_allowed_with_a_warning_and_checked_when_the_subject_arrives(
    cluster: Cluster, ns: str
) -> None:
    early = apply(cluster, ns, schema("orders-v1", "orders", 1, V1))
    apply(cluster, ns, schema("orders-v2", "orders", 2, avro(("id", "long"))))

    late_subject = apply(cluster, ns, subject(ns, "orders", compatibility="FULL"))

    assert early.returncode == 0, early.stderr
    assert f"Subject {ns}/orders does not exist yet" in early.stderr
    assert late_subject.returncode == 0, late_subject.stderr
    assert "already violate FULL" in late_subject.stderr


def test_a_level_the_history_violates_and_a_none_level_get_warnings(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders", compatibility="NONE"))
    apply(cluster, ns, schema("orders-v1", "orders", 1, V1))
    apply(cluster, ns, schema("orders-v2", "orders", 2, avro(("id", "long"))))

    stricter = apply(cluster, ns, subject(ns, "orders", compatibility="BACKWARD"))
    none_again = apply(cluster, ns, subject(ns, "orders", compatibility="NONE"))

    assert stricter.returncode == 0, stricter.stderr
    assert "violate the new level BACKWARD" in stricter.stderr
    assert none_again.returncode == 0
    assert "compatibility NONE turns off compatibility checks" in none_again.stderr


def test_deleting_versions_and_subjects_is_allowed(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "orders"))
    apply(cluster, ns, schema("orders-v1", "orders", 1, V1))
    apply(cluster, ns, schema("orders-v2", "orders", 2, V2))

    latest = cluster.kubectl("delete", "-n", ns, "schema", "orders-v2", check=False)
    gone_subject = cluster.kubectl("delete", "-n", ns, "subject", "orders", check=False)
    last = cluster.kubectl("delete", "-n", ns, "schema", "orders-v1", check=False)

    assert latest.returncode == 0, latest.stderr
    assert "after the deletion clients asking for the latest version get version 1" in latest.stderr
    assert gone_subject.returncode == 0, gone_subject.stderr
    assert "still refer to it" in gone_subject.stderr
    assert last.returncode == 0, last.stderr
    assert not exists(cluster, ns, "schema", "orders-v1")


def test_a_certificate_rotation_is_picked_up_without_a_restart(webhook: Webhook) -> None:
    import socket
    import ssl

    from cryptography import x509

    def served_serial() -> int:
        context = ssl.create_default_context(cadata=webhook.ca_pem.decode())
        host, port = webhook.url.removeprefix("https://").split(":")
        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    before = served_serial()
    fresh = webhook.ca.issue("kschema-webhook", hosts=("127.0.0.1",))
    fresh.write(webhook.cert_dir / "tls.crt", webhook.cert_dir / "tls.key")
    expected = x509.load_pem_x509_certificate(fresh.cert_pem).serial_number
    deadline = time.monotonic() + 20
    while served_serial() != expected:
        assert time.monotonic() < deadline, "the rotated certificate was never served"
        time.sleep(0.1)
    assert expected != before


def _post_review(webhook: Webhook, path: str, request: dict[str, Any]) -> dict[str, Any]:
    import ssl
    import urllib.request

    body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
    context = ssl.create_default_context(cadata=webhook.ca_pem.decode())
    call = urllib.request.Request(
        webhook.url + path, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(call, context=context, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())["response"]
    return answer


def test_the_webhook_itself_explains_a_content_change_that_bypasses_the_crd(
    webhook: Webhook, ns: str
) -> None:
    old = json.loads(schema("orders-v1", "orders", 1, V1))
    new = json.loads(schema("orders-v1", "orders", 1, V2))
    for body in (old, new):
        body["metadata"]["namespace"] = ns

    answer = _post_review(
        webhook,
        SCHEMAS_PATH,
        {"uid": "u-1", "operation": "UPDATE", "namespace": ns, "object": new, "oldObject": old},
    )

    assert answer["uid"] == "u-1"
    assert answer["allowed"] is False
    assert answer["status"]["message"].startswith(
        f"Schema {ns}/orders-v1: spec.schema cannot change once created"
    )


def test_the_reference_configuration_routes_to_the_handler_paths() -> None:
    config = yaml.safe_load(CONFIG_FILE.read_text())
    paths = {
        entry["rules"][0]["resources"][0]: entry["clientConfig"]["service"]["path"]
        for entry in config["webhooks"]
    }
    assert paths == {"subjects": SUBJECTS_PATH, "schemas": SCHEMAS_PATH}
    for entry in config["webhooks"]:
        assert entry["failurePolicy"] == "Fail"
        assert entry["sideEffects"] == "None"
        defaults = WebhookSettings(Path("tls.crt"), Path("tls.key"))
        assert entry["timeoutSeconds"] > defaults.cache_sync_timeout + defaults.store_timeout


# --------------------------------------------------------------------------------------------------------
# Bounded work


def test_the_60_level_ref_dag_gets_a_verdict_at_admission(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "dag", fmt="JSON"))
    assert apply(cluster, ns, schema("dag-v1", "dag", 1, json_ref_dag(60))).returncode == 0

    refused = apply(cluster, ns, schema("dag-v2", "dag", 2, json_ref_dag(60, "integer")))

    assert refused.returncode != 0
    assert "is not BACKWARD compatible with version 1" in refused.stderr
    assert "TYPE_CHANGED" in refused.stderr or "type" in refused.stderr


def test_a_schema_too_complex_to_check_is_refused_by_kubectl_apply(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "wide", fmt="JSON"))
    assert apply(cluster, ns, schema("wide-v1", "wide", 1, wide_any_of(REFUSED_BRANCHES))).returncode == 0

    refused = apply(cluster, ns, schema("wide-v2", "wide", 2, wide_any_of(REFUSED_BRANCHES, shift=1)))

    assert refused.returncode != 0
    assert 'admission webhook "schemas.kschema.io" denied the request' in refused.stderr
    assert f"Schema {ns}/wide-v2: too complex to check: " in refused.stderr
    assert not exists(cluster, ns, "schema", "wide-v2")


def test_a_dynamic_ref_to_an_external_url_is_refused_at_admission(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, subject(ns, "dyn", fmt="JSON"))
    text = json.dumps(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "properties": {"x": {"$dynamicRef": "https://schemas.example.com/meta.json#node"}},
        }
    )

    refused = apply(cluster, ns, schema("dyn-v1", "dyn", 1, text))

    assert refused.returncode != 0
    assert "/properties/x/$dynamicRef" in refused.stderr
