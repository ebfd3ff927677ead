"""The Helm chart (charts/kschema), rendered by the real `helm` (built from the Go module proxy by
dev/helm/build.sh on first use) and, for the `cluster` tests, dry-run applied to the real kube-apiserver."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from kschema.devcluster.pki import CertificateAuthority
from kschema.webhook import SCHEMAS_PATH, SUBJECTS_PATH
from tests.harness.cluster import Cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "kschema"
CRDS = REPO_ROOT / "crds"
RELEASE, NAMESPACE = "kschema", "kschema-system"
POSTGRES = {"topology": "postgres", "store": {"postgres": {"existingSecret": "kschema-postgres"}}}
TOPOLOGIES = {"sqlite": {}, "postgres": POSTGRES}
CERT_MANAGER_KINDS = {"Issuer", "ClusterIssuer", "Certificate"}

Manifest = dict[str, Any]


class Helm:
    def __init__(self, binary: Path, work: Path) -> None:
        self.binary = binary
        self._work = work
        self._count = 0

    def run(self, *args: str, values: Mapping[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), *args]
        if values:
            self._count += 1
            path = self._work / f"values-{self._count}.yaml"
            path.write_text(yaml.safe_dump(dict(values)))
            argv += ["--values", str(path)]
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)

    def template_text(
        self, values: Mapping[str, Any] | None = None, *, namespace: str = NAMESPACE, show_only: str = ""
    ) -> str:
        args = ["template", RELEASE, str(CHART), "--namespace", namespace]
        if show_only:
            args += ["--show-only", show_only]
        done = self.run(*args, values=values)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def template(
        self, values: Mapping[str, Any] | None = None, *, namespace: str = NAMESPACE
    ) -> list[Manifest]:
        return [d for d in yaml.safe_load_all(self.template_text(values, namespace=namespace)) if d]

    def template_error(self, values: Mapping[str, Any]) -> str:
        done = self.run("template", RELEASE, str(CHART), "--namespace", NAMESPACE, values=values)
        assert done.returncode != 0, "the chart rendered values it should have refused"
        return done.stderr


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "dev" / "helm" / "build.sh")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"building helm failed:\n{done.stderr[-4000:]}"
    return Helm(Path(done.stdout.strip().splitlines()[-1]), tmp_path_factory.mktemp("helm"))


def _with_existing_tls(values: Mapping[str, Any]) -> dict[str, Any]:
    """The escape hatch from cert-manager: an existing Secret plus the CA that signed it."""
    ca_bundle = base64.b64encode(CertificateAuthority().cert_pem).decode()
    webhook = {"tls": {"existingSecret": "kschema-webhook-tls", "caBundle": ca_bundle}}
    return {**values, "webhook": webhook}


def _find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]


def _one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = _find(manifests, kind, name)
    assert len(found) == 1, (
        f"expected one {kind} {name or ''}, found {[m['metadata']['name'] for m in found]}"
    )
    return found[0]


def _deployments(manifests: list[Manifest]) -> dict[str, Manifest]:
    """Deployments keyed by the kschema subcommand their container runs."""
    return {
        d["spec"]["template"]["spec"]["containers"][0]["args"][0]: d for d in _find(manifests, "Deployment")
    }


def _env(container: Mapping[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _selects(selector: Mapping[str, str], deployment: Manifest) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


# --- helm lint -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_chart_lints_clean_in_each_topology(helm: Helm, topology: str) -> None:
    done = helm.run("lint", "--strict", str(CHART), values=TOPOLOGIES[topology])

    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout
    assert "[WARNING]" not in done.stdout
    assert "[ERROR]" not in done.stdout


# --- CRDs: one source of truth in crds/ ------------------------------------------------------------------


@pytest.mark.parametrize("crd_file", sorted(p.name for p in CRDS.glob("*.yaml")))
def test_rendered_crds_are_byte_equal_to_the_crds_folder(helm: Helm, crd_file: str) -> None:
    source = f"templates/crds/{crd_file}"
    rendered = helm.template_text({"crds": {"keep": False}}, show_only=source)

    # Helm prints each document as `---`, a `# Source:` line, then the document's text as rendered.
    documents = re.split(rf"^---\n# Source: kschema/{re.escape(source)}\n", rendered, flags=re.MULTILINE)
    assert documents[0] == ""
    assert "---\n".join(documents[1:]) == (CRDS / crd_file).read_text()


def test_every_crd_template_comes_from_the_crds_folder() -> None:
    templates = {p.name for p in (CHART / "templates" / "crds").glob("*.yaml")}

    assert templates == {p.name for p in CRDS.glob("*.yaml")}
    done = subprocess.run(
        ["python", str(REPO_ROOT / "dev" / "helm" / "sync_crds.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_kept_crds_differ_from_the_crds_folder_only_by_the_keep_annotation(helm: Helm) -> None:
    rendered = {m["metadata"]["name"]: m for m in _find(helm.template(), "CustomResourceDefinition")}
    sources = {
        d["metadata"]["name"]: d for p in CRDS.glob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d
    }

    assert set(rendered) == set(sources)
    for name, crd in rendered.items():
        assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}, name
        assert crd == sources[name], name


def test_crds_can_be_left_out_or_installed_without_kopf_peering(helm: Helm) -> None:
    without = helm.template({"crds": {"enabled": False}})
    no_peering = helm.template({"crds": {"kopfPeering": False}})

    assert _find(without, "CustomResourceDefinition") == []
    assert {m["metadata"]["name"] for m in _find(no_peering, "CustomResourceDefinition")} == {
        "subjects.kschema.io",
        "schemas.kschema.io",
    }


# --- topologies ------------------------------------------------------------------------------------------


def test_sqlite_topology_runs_one_recreated_registry_on_a_persistent_volume(helm: Helm) -> None:
    manifests = helm.template()
    deployments = _deployments(manifests)

    assert set(deployments) == {"run"}
    registry = deployments["run"]
    assert registry["spec"]["replicas"] == 1
    assert registry["spec"]["strategy"] == {"type": "Recreate"}
    pod = registry["spec"]["template"]["spec"]
    claim = _one(manifests, "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    container = pod["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == "/var/lib/kschema"
    assert _env(container)["KSCHEMA_STORE_URL"] == "sqlite:////var/lib/kschema/registry.db"
    assert _find(manifests, "PodDisruptionBudget") == []


def test_sqlite_topology_serves_the_webhook_and_the_api_from_the_registry_pod(helm: Helm) -> None:
    manifests = helm.template()
    registry = _deployments(manifests)["run"]

    for service in _find(manifests, "Service"):
        assert _selects(service["spec"]["selector"], registry), service["metadata"]["name"]


def test_postgres_topology_runs_operator_webhook_and_api_apart(helm: Helm) -> None:
    manifests = helm.template(POSTGRES)
    deployments = _deployments(manifests)

    assert set(deployments) == {"operator", "webhook", "api"}
    assert _find(manifests, "PersistentVolumeClaim") == []
    assert deployments["webhook"]["spec"]["replicas"] >= 2
    assert deployments["api"]["spec"]["replicas"] >= 2
    for deployment in deployments.values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert _env(container)["KSCHEMA_STORE_URL"] == {
            "secretKeyRef": {"name": "kschema-postgres", "key": "url"}
        }


def test_postgres_topology_protects_the_webhook_with_a_disruption_budget(helm: Helm) -> None:
    manifests = helm.template(POSTGRES)
    deployments = _deployments(manifests)

    budgets = _find(manifests, "PodDisruptionBudget")
    webhook_budgets = [
        b for b in budgets if _selects(b["spec"]["selector"]["matchLabels"], deployments["webhook"])
    ]
    assert len(webhook_budgets) == 1
    assert webhook_budgets[0]["spec"]["minAvailable"] >= 1
    assert webhook_budgets[0]["spec"]["minAvailable"] < deployments["webhook"]["spec"]["replicas"]
    # A budget must select one component only, or it would count the wrong pods.
    for budget in budgets:
        selected = [
            n for n, d in deployments.items() if _selects(budget["spec"]["selector"]["matchLabels"], d)
        ]
        assert len(selected) == 1, budget["metadata"]["name"]


def test_postgres_topology_services_select_the_component_that_serves_them(helm: Helm) -> None:
    manifests = helm.template(POSTGRES)
    deployments = _deployments(manifests)

    webhook_service = _one(manifests, "Service", "kschema-webhook")
    api_service = _one(manifests, "Service", "kschema")
    assert [n for n, d in deployments.items() if _selects(webhook_service["spec"]["selector"], d)] == [
        "webhook"
    ]
    assert [n for n, d in deployments.items() if _selects(api_service["spec"]["selector"], d)] == ["api"]


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_services_target_named_ports_that_their_pods_declare(helm: Helm, topology: str) -> None:
    manifests = helm.template(TOPOLOGIES[topology])
    deployments = list(_deployments(manifests).values())

    for service in _find(manifests, "Service"):
        for port in service["spec"]["ports"]:
            serving = [d for d in deployments if _selects(service["spec"]["selector"], d)]
            assert serving, service["metadata"]["name"]
            for deployment in serving:
                names = {p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
                assert port["targetPort"] in names, (service["metadata"]["name"], port)


# --- ports, probes, hardening ----------------------------------------------------------------------------

# The fixed ports of each process: operator health 8080, read API 8081, webhook 9443.
EXPECTED_PORTS = {
    "run": {8080, 8081, 9443},
    "operator": {8080},
    "webhook": {9443},
    "api": {8081},
}


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_each_process_exposes_its_fixed_ports_and_is_probed_on_them(helm: Helm, topology: str) -> None:
    for command, deployment in _deployments(helm.template(TOPOLOGIES[topology])).items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert set(ports.values()) == EXPECTED_PORTS[command], command
        assert "livenessProbe" in container, command
        assert "startupProbe" in container, command
        for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(probe_name)
            if probe is None:
                continue
            action = probe.get("httpGet") or probe.get("tcpSocket")
            assert action is not None, (command, probe_name)
            assert ports[action["port"]] in EXPECTED_PORTS[command], (command, probe_name)
            if "httpGet" in probe:
                assert probe["httpGet"]["path"] in {"/healthz", "/readyz"}, (command, probe_name)
    # The read API's readiness is its /readyz on 8081 wherever it runs.
    for command, deployment in _deployments(helm.template(TOPOLOGIES[topology])).items():
        if command in {"run", "api"}:
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            readiness = container["readinessProbe"]["httpGet"]
            assert (readiness["path"], ports[readiness["port"]]) == ("/readyz", 8081)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_every_pod_runs_hardened_as_the_images_numeric_user(helm: Helm, topology: str) -> None:
    for command, deployment in _deployments(helm.template(TOPOLOGIES[topology])).items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, command
        assert pod["securityContext"]["runAsUser"] == 10001, command
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, command
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, command
            assert context["allowPrivilegeEscalation"] is False, command
            assert context["capabilities"]["drop"] == ["ALL"], command
            assert "add" not in context["capabilities"], command
            # With a read-only root, /tmp (HOME) must be a writable volume.
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], command


def test_the_read_api_gets_no_kubernetes_token(helm: Helm) -> None:
    manifests = helm.template(POSTGRES)

    api = _deployments(manifests)["api"]["spec"]["template"]["spec"]
    assert api["automountServiceAccountToken"] is False


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_every_resource_but_the_crds_carries_the_standard_labels(helm: Helm, topology: str) -> None:
    for manifest in helm.template(TOPOLOGIES[topology]):
        if manifest["kind"] == "CustomResourceDefinition":
            continue
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "kschema", manifest["metadata"]["name"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"]
        assert labels["app.kubernetes.io/component"]


# --- RBAC ------------------------------------------------------------------------------------------------


def _rules(role: Manifest) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_operator_role_grants_what_the_operator_does_and_no_wildcards(helm: Helm) -> None:
    rules = _rules(_one(helm.template(), "ClusterRole", "kschema-operator"))

    needed = {
        *(("kschema.io", r, v) for r in ("subjects", "schemas") for v in ("get", "list", "watch", "patch")),
        *(("kschema.io", f"{r}/status", "patch") for r in ("subjects", "schemas")),
        *(("kschema.io", f"{r}/finalizers", "update") for r in ("subjects", "schemas")),
        *(("", "configmaps", v) for v in ("get", "list", "watch", "create", "update", "patch", "delete")),
        ("", "events", "create"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
    }
    assert needed <= rules
    assert not any("*" in part for rule in rules for part in rule)
    # Nothing about Secrets, Pods or the operator's own RBAC.
    assert {r for _, r, _ in rules} & {"secrets", "pods", "clusterroles", "roles"} == set()


def test_operator_role_covers_kopf_peering_when_the_crds_define_it(helm: Helm) -> None:
    peering_crds = {
        d["metadata"]["name"]
        for p in CRDS.glob("*.yaml")
        for d in yaml.safe_load_all(p.read_text())
        if d and d["spec"]["group"] == "kopf.dev"
    }
    rules = _rules(_one(helm.template(), "ClusterRole", "kschema-operator"))

    if "clusterkopfpeerings.kopf.dev" in peering_crds:
        assert {
            ("kopf.dev", "clusterkopfpeerings", v) for v in ("get", "list", "watch", "patch", "create")
        } <= rules
    else:
        assert all(group != "kopf.dev" for group, _, _ in rules)


def test_webhook_role_only_reads_subjects_and_schemas(helm: Helm) -> None:
    rules = _rules(_one(helm.template(), "ClusterRole", "kschema-webhook"))

    assert rules == {("kschema.io", r, v) for r in ("subjects", "schemas") for v in ("list", "watch")}


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_each_pod_runs_as_a_service_account_bound_to_exactly_the_roles_it_needs(
    helm: Helm, topology: str
) -> None:
    manifests = helm.template(TOPOLOGIES[topology])
    accounts = {a["metadata"]["name"] for a in _find(manifests, "ServiceAccount")}
    bound: dict[str, set[str]] = {}
    for binding in _find(manifests, "ClusterRoleBinding"):
        for subject in binding["subjects"]:
            assert subject["namespace"] == NAMESPACE
            bound.setdefault(subject["name"], set()).add(binding["roleRef"]["name"])
    expected_roles = {
        "run": {"kschema-operator", "kschema-webhook"},
        "operator": {"kschema-operator"},
        "webhook": {"kschema-webhook"},
        "api": set(),
    }

    for command, deployment in _deployments(manifests).items():
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        assert account in accounts, command
        assert bound.get(account, set()) == expected_roles[command], command


# --- the webhook configuration ---------------------------------------------------------------------------


def _webhook_configuration(manifests: list[Manifest]) -> Manifest:
    return _one(manifests, "ValidatingWebhookConfiguration")


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_webhook_configuration_fails_closed_with_an_explicit_timeout(helm: Helm, topology: str) -> None:
    configuration = _webhook_configuration(helm.template(TOPOLOGIES[topology]))

    assert len(configuration["webhooks"]) == 2
    for webhook in configuration["webhooks"]:
        assert webhook["failurePolicy"] == "Fail"
        assert webhook["sideEffects"] == "None"
        assert 1 <= webhook["timeoutSeconds"] <= 30
        assert webhook["admissionReviewVersions"] == ["v1"]


def test_webhook_paths_are_the_webhooks_handler_paths(helm: Helm) -> None:
    configuration = _webhook_configuration(helm.template())

    paths = {
        w["rules"][0]["resources"][0]: w["clientConfig"]["service"]["path"] for w in configuration["webhooks"]
    }
    assert paths == {"subjects": SUBJECTS_PATH, "schemas": SCHEMAS_PATH}


def test_webhook_rules_match_the_reference_manifests_in_webhook_folder(helm: Helm) -> None:
    reference = yaml.safe_load((REPO_ROOT / "webhook" / "validatingwebhookconfiguration.yaml").read_text())
    configuration = _webhook_configuration(helm.template())

    def essentials(webhooks: list[Manifest]) -> dict[str, Any]:
        return {
            w["name"]: (
                w["rules"],
                w["clientConfig"]["service"]["path"],
                w["failurePolicy"],
                w["sideEffects"],
            )
            for w in webhooks
        }

    assert essentials(configuration["webhooks"]) == essentials(reference["webhooks"])


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_webhook_configuration_calls_the_webhook_service(helm: Helm, topology: str) -> None:
    manifests = helm.template(TOPOLOGIES[topology])
    service = _one(manifests, "Service", "kschema-webhook")

    for webhook in _webhook_configuration(manifests)["webhooks"]:
        target = webhook["clientConfig"]["service"]
        assert (target["name"], target["namespace"]) == ("kschema-webhook", NAMESPACE)
        assert target["port"] in {p["port"] for p in service["spec"]["ports"]}


def test_cert_manager_issues_the_webhook_certificate_and_injects_its_ca_by_default(helm: Helm) -> None:
    manifests = helm.template()
    configuration = _webhook_configuration(manifests)
    certificates = {c["metadata"]["name"]: c for c in _find(manifests, "Certificate")}
    issuers = {i["metadata"]["name"]: i for i in _find(manifests, "Issuer")}

    namespace, name = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
    assert namespace == NAMESPACE
    serving = certificates[name]
    assert "kschema-webhook.kschema-system.svc" in serving["spec"]["dnsNames"]
    # Issued by a CA Issuer whose CA is a cert-manager Certificate, so renewals keep the injected CA.
    ca_issuer = issuers[serving["spec"]["issuerRef"]["name"]]
    ca_certificate = next(c for c in certificates.values() if c["spec"].get("isCA"))
    assert ca_issuer["spec"]["ca"]["secretName"] == ca_certificate["spec"]["secretName"]
    assert "selfSigned" in issuers[ca_certificate["spec"]["issuerRef"]["name"]]["spec"]
    # The caBundle is left to the CA injector.
    assert all("caBundle" not in w["clientConfig"] for w in configuration["webhooks"])
    # The webhook pod mounts the Secret cert-manager writes.
    registry = _deployments(manifests)["run"]["spec"]["template"]["spec"]
    tls = next(v for v in registry["volumes"] if v["name"] == "webhook-tls")
    assert tls["secret"]["secretName"] == serving["spec"]["secretName"]
    assert {i["key"] for i in tls["secret"]["items"]} == {"tls.crt", "tls.key"}


def test_an_existing_issuer_replaces_the_bootstrapped_ca(helm: Helm) -> None:
    manifests = helm.template(
        {"webhook": {"tls": {"certManager": {"issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}}}}
    )

    assert _find(manifests, "Issuer") == []
    certificate = _one(manifests, "Certificate")
    assert certificate["spec"]["issuerRef"] == {
        "name": "corp-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_an_existing_tls_secret_replaces_cert_manager(helm: Helm, topology: str) -> None:
    values = _with_existing_tls(TOPOLOGIES[topology])
    manifests = helm.template(values)

    assert {m["kind"] for m in manifests} & CERT_MANAGER_KINDS == set()
    configuration = _webhook_configuration(manifests)
    assert "annotations" not in configuration["metadata"]
    for webhook in configuration["webhooks"]:
        assert webhook["clientConfig"]["caBundle"] == values["webhook"]["tls"]["caBundle"]
    for deployment in _deployments(manifests).values():
        for volume in deployment["spec"]["template"]["spec"]["volumes"]:
            if volume["name"] == "webhook-tls":
                assert volume["secret"]["secretName"] == "kschema-webhook-tls"


@pytest.mark.parametrize(
    "values", [{}, POSTGRES, _with_existing_tls({})], ids=["certManager", "postgres", "existingSecret"]
)
def test_no_key_or_certificate_is_generated_at_template_time(helm: Helm, values: dict[str, Any]) -> None:
    first = helm.template_text(values)
    second = helm.template_text(values)

    # Rendering is a pure function of the values, so GitOps diffs stay empty between syncs.
    assert first == second
    assert "PRIVATE KEY" not in first
    assert "BEGIN CERTIFICATE" not in first
    for template in (CHART / "templates").rglob("*"):
        if template.is_file():
            assert not re.search(r"\bgen(CA|SelfSignedCert|SignedCert|PrivateKey)\b", template.read_text()), (
                template
            )


# --- values validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"topology": "postgres"}, "store.postgres.existingSecret: required when topology is postgres"),
        ({"webhook": {"tls": {"existingSecret": "tls"}}}, "webhook.tls.caBundle: required"),
        ({"topology": "mysql"}, "/topology"),
        ({"webhook": {"replicaCount": 1}}, "/webhook/replicaCount"),
        ({"webhook": {"timeoutSeconds": 31}}, "/webhook/timeoutSeconds"),
        ({"webhok": {}}, "'webhok' not allowed"),
        ({"logLevel": "LOUD"}, "/logLevel"),
    ],
    ids=[
        "postgres-without-secret",
        "tls-without-ca",
        "topology",
        "one-webhook",
        "timeout",
        "typo",
        "log-level",
    ],
)
def test_values_that_cannot_work_are_refused_with_the_value_named(
    helm: Helm, values: dict[str, Any], message: str
) -> None:
    assert message in helm.template_error(values)


# --- the real API server ---------------------------------------------------------------------------------


def _server_dry_run(cluster: Cluster, manifests_text: str) -> list[str]:
    done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=manifests_text)
    return [line for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.cluster
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_the_api_server_accepts_every_rendered_object(
    helm: Helm, cluster: Cluster, namespace: str, topology: str
) -> None:
    # cert-manager's CRDs are not installed here; the existing-Secret rendering has no cert-manager kinds,
    # and the cert-manager rendering's shape is checked above.
    values = _with_existing_tls(TOPOLOGIES[topology])
    text = helm.template_text(values, namespace=namespace)
    count = len([d for d in yaml.safe_load_all(text) if d])

    lines = _server_dry_run(cluster, text)

    assert len(lines) == count, lines
    assert all(line.endswith("(server dry run)") for line in lines), lines


@pytest.mark.cluster
def test_the_api_server_accepts_the_cert_manager_rendering_apart_from_cert_manager_kinds(
    helm: Helm, cluster: Cluster, namespace: str
) -> None:
    manifests = helm.template(namespace=namespace)
    applicable = [m for m in manifests if m["kind"] not in CERT_MANAGER_KINDS]

    lines = _server_dry_run(cluster, yaml.safe_dump_all(applicable))

    assert len(lines) == len(applicable), lines
    configuration = next(line for line in lines if "validatingwebhookconfiguration" in line)
    assert configuration.endswith("(server dry run)")


# --- hardening: resources, NetworkPolicy, watchNamespaces, read API authentication ------------------------

HARDENED = {
    "watchNamespaces": ["team-a", "team-b"],
    "networkPolicy": {
        "enabled": True,
        "webhook": {"from": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]},
        "api": {
            "allowedNamespaces": ["apps"],
            "extraFrom": [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}],
        },
    },
    "api": {
        "auth": {"mode": "checks", "allowedNamespaces": ["apps"], "allowedServiceAccounts": ["ci/deployer"]}
    },
}


def _hardened(topology: str) -> dict[str, Any]:
    return {**TOPOLOGIES[topology], **HARDENED}


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_chart_lints_clean_with_every_hardening_option_on(helm: Helm, topology: str) -> None:
    done = helm.run("lint", "--strict", str(CHART), values=_hardened(topology))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_every_container_requests_cpu_and_memory_and_is_limited_in_memory(helm: Helm, topology: str) -> None:
    for command, deployment in _deployments(helm.template(TOPOLOGIES[topology])).items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            resources = container["resources"]
            assert set(resources["requests"]) == {"cpu", "memory"}, command
            assert set(resources["limits"]) == {"memory"}, command


def test_no_network_policy_by_default(helm: Helm) -> None:
    for topology in TOPOLOGIES.values():
        assert _find(helm.template(topology), "NetworkPolicy") == []


def _ingress_by_port(policy: Manifest) -> dict[str, list[dict[str, Any]]]:
    rules = policy["spec"]["ingress"]
    return {port["port"]: rule["from"] for rule in rules for port in rule["ports"]}


def test_the_sqlite_network_policy_opens_the_webhook_to_the_api_server_and_the_api_to_chosen_namespaces(
    helm: Helm,
) -> None:
    manifests = helm.template(_hardened("sqlite"))

    policy = _one(manifests, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert _selects(policy["spec"]["podSelector"]["matchLabels"], _deployments(manifests)["run"])
    by_port = _ingress_by_port(policy)
    assert set(by_port) == {"webhook", "http"}
    assert by_port["webhook"] == [{"ipBlock": {"cidr": "10.0.0.0/24"}}]
    namespaces, extra = by_port["http"]
    (expression,) = namespaces["namespaceSelector"]["matchExpressions"]
    assert expression == {
        "key": "kubernetes.io/metadata.name",
        "operator": "In",
        "values": [NAMESPACE, "apps"],
    }
    assert extra == {"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}


def test_the_postgres_network_policies_cover_the_webhook_and_api_pods_apart(helm: Helm) -> None:
    manifests = helm.template(_hardened("postgres"))
    deployments = _deployments(manifests)

    policies = {p["metadata"]["name"]: p for p in _find(manifests, "NetworkPolicy")}
    assert set(policies) == {"kschema-webhook", "kschema-api"}
    assert _selects(policies["kschema-webhook"]["spec"]["podSelector"]["matchLabels"], deployments["webhook"])
    assert _selects(policies["kschema-api"]["spec"]["podSelector"]["matchLabels"], deployments["api"])
    assert set(_ingress_by_port(policies["kschema-webhook"])) == {"webhook"}
    assert set(_ingress_by_port(policies["kschema-api"])) == {"http"}


def test_watch_namespaces_narrows_the_operators_rights_to_roles_in_those_namespaces(helm: Helm) -> None:
    for topology in TOPOLOGIES:
        manifests = helm.template({**TOPOLOGIES[topology], "watchNamespaces": ["team-a", "team-b"]})
        deployments = _deployments(manifests)
        command = "run" if topology == "sqlite" else "operator"
        account = deployments[command]["spec"]["template"]["spec"]["serviceAccountName"]

        cluster_rules = _rules(_one(manifests, "ClusterRole", "kschema-operator"))
        assert {r for _, r, _ in cluster_rules} == {"namespaces", "customresourcedefinitions"}
        assert {v for _, _, v in cluster_rules} == {"list", "watch"}
        roles = {r["metadata"]["namespace"]: _rules(r) for r in _find(manifests, "Role")}
        assert set(roles) == {"team-a", "team-b"}
        for rules in roles.values():
            assert ("", "configmaps", "create") in rules
            assert ("kschema.io", "schemas/status", "patch") in rules
            assert ("kopf.dev", "kopfpeerings", "create") in rules
        bindings = {b["metadata"]["namespace"]: b for b in _find(manifests, "RoleBinding")}
        assert set(bindings) == {"team-a", "team-b"}
        for binding in bindings.values():
            assert binding["subjects"] == [
                {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
            ]
        assert (
            _env(deployments[command]["spec"]["template"]["spec"]["containers"][0])["KSCHEMA_NAMESPACES"]
            == "team-a,team-b"
        )
        for webhook in _webhook_configuration(manifests)["webhooks"]:
            (expression,) = webhook["namespaceSelector"]["matchExpressions"]
            assert expression["values"] == ["team-a", "team-b"]


def test_read_api_authentication_reviews_tokens_with_only_the_rights_it_needs(helm: Helm) -> None:
    for topology in TOPOLOGIES:
        manifests = helm.template({**TOPOLOGIES[topology], "api": HARDENED["api"]})
        deployments = _deployments(manifests)
        command = "run" if topology == "sqlite" else "api"
        pod = deployments[command]["spec"]["template"]["spec"]

        assert _rules(_one(manifests, "ClusterRole", "kschema-api-token-review")) == {
            ("authentication.k8s.io", "tokenreviews", "create")
        }
        binding = _one(manifests, "ClusterRoleBinding", "kschema-api-token-review")
        assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
        assert pod.get("automountServiceAccountToken", True) is True
        env = _env(pod["containers"][0])
        assert env["KSCHEMA_API_AUTH"] == "checks"
        assert env["KSCHEMA_API_AUTH_NAMESPACES"] == "apps"
        assert env["KSCHEMA_API_AUTH_SERVICE_ACCOUNTS"] == "ci/deployer"
        assert env["KSCHEMA_API_AUTH_AUDIENCE"] == "kschema"


def test_read_api_authentication_is_off_by_default_with_no_token_review_rights(helm: Helm) -> None:
    for topology in TOPOLOGIES.values():
        manifests = helm.template(topology)
        assert _find(manifests, "ClusterRole", "kschema-api-token-review") == []
        for deployment in _deployments(manifests).values():
            assert "KSCHEMA_API_AUTH" not in _env(deployment["spec"]["template"]["spec"]["containers"][0])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"networkPolicy": {"enabled": True}}, "networkPolicy.webhook.from: required"),
        ({"api": {"auth": {"mode": "all"}}}, "api.auth.allowedNamespaces: name namespaces"),
        ({"api": {"auth": {"mode": "on"}}}, "/api/auth/mode"),
        (
            {"api": {"auth": {"mode": "all", "allowedServiceAccounts": ["bob"]}}},
            "/api/auth/allowedServiceAccounts",
        ),
        ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces"),
        ({"networkPolicy": {"enabled": True, "webhook": {"from": [{"cidr": "10.0.0.0/8"}]}}}, "cidr"),
    ],
    ids=[
        "policy-without-api-server",
        "auth-allows-nobody",
        "auth-mode",
        "service-account",
        "namespace",
        "peer",
    ],
)
def test_hardening_values_that_cannot_work_are_refused_with_the_value_named(
    helm: Helm, values: dict[str, Any], message: str
) -> None:
    assert message in helm.template_error(values)


@pytest.mark.cluster
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_the_api_server_accepts_every_object_with_every_hardening_option_on(
    helm: Helm, cluster: Cluster, namespace: str, topology: str
) -> None:
    values = _with_existing_tls({**_hardened(topology), "watchNamespaces": [namespace]})
    text = helm.template_text(values, namespace=namespace)
    kinds = {d["kind"] for d in yaml.safe_load_all(text) if d}
    count = len([d for d in yaml.safe_load_all(text) if d])

    lines = _server_dry_run(cluster, text)

    assert {"NetworkPolicy", "Role", "RoleBinding"} <= kinds
    assert len(lines) == count, lines
    assert all(line.endswith("(server dry run)") for line in lines), lines
