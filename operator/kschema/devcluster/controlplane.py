"""Starts and stops etcd, kube-apiserver and kube-controller-manager as local processes on free loopback
ports, with generated certificates and an admin kubeconfig. Used by the test suite (a session fixture),
the demo and `kschema dev up|down`."""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from kschema.devcluster.pki import CertificateAuthority, service_account_key_pem

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "dev" / "controlplane" / "build.sh"
DEFAULT_STATE_DIR = REPO_ROOT / ".kschema" / "cluster"
STATE_FILE = "state.json"


LOOPBACK_SERVICE_RANGE = "10.0.0.0/24"


class ControlPlaneError(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeAddressing:
    """Where a control plane that serves a node listens: an address pods can route to (the node bridge's
    own), the Service range (its first address is the `kubernetes` Service) and the node's name."""

    address: str
    api_port: int
    service_range: str
    node_name: str

    def service_ip(self, index: int) -> str:
        return str(ipaddress.ip_network(self.service_range)[index])


def build_binaries() -> Path:
    """Returns the folder holding kube-apiserver, kube-controller-manager and etcd, building them from the
    Go module proxy into the user cache when they are missing (`KSCHEMA_K8S_BIN` overrides)."""
    override = os.environ.get("KSCHEMA_K8S_BIN")
    if override:
        return Path(override)
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ControlPlaneError(f"building the control plane failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class _State:
    directory: str
    kubeconfig: str
    server: str
    pids: dict[str, int] = field(default_factory=dict)


class ControlPlane:
    """One local control plane. `start()` returns when the API server is ready; `stop()` ends every
    process it started and removes its directory (unless it was given one to keep)."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        with_controller_manager: bool = True,
        bin_dir: Path | None = None,
        detach: bool = False,
        node: NodeAddressing | None = None,
    ) -> None:
        self._owns_directory = directory is None
        self._node = node
        # tmpfs keeps etcd fast; fall back to the normal temp dir elsewhere.
        shm = Path("/dev/shm")
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="kschema-cp-", dir=base))
        self._with_kcm = with_controller_manager
        self._bin_dir = bin_dir
        self._detach = detach
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[object] = []
        self.server = ""

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "admin.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.directory / "pki"

    @property
    def ca_file(self) -> Path:
        return self.pki / "ca.crt"

    def start(self, timeout: float = 90.0) -> ControlPlane:
        started = time.monotonic()
        bin_dir = self._bin_dir or build_binaries()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pki.mkdir(exist_ok=True)
        etcd_port, peer_port = free_port(), free_port()
        node = self._node
        address = node.address if node else "127.0.0.1"
        api_port = node.api_port if node else free_port()
        self.server = f"https://{address}:{api_port}"
        self._write_pki()
        self._write_kubeconfig()
        try:
            self._spawn(
                "etcd",
                [
                    str(bin_dir / "etcd"),
                    "--name=default",
                    f"--data-dir={self.directory / 'etcd'}",
                    f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                    f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                    "--unsafe-no-fsync=true",
                    "--log-level=warn",
                ],
            )
            self._wait("etcd", f"http://127.0.0.1:{etcd_port}/health", deadline=started + timeout)
            self._spawn(
                "kube-apiserver",
                [
                    str(bin_dir / "kube-apiserver"),
                    f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                    f"--bind-address={address}",
                    f"--secure-port={api_port}",
                    f"--advertise-address={address}",
                    f"--cert-dir={self.pki}",
                    f"--tls-cert-file={self.pki / 'apiserver.crt'}",
                    f"--tls-private-key-file={self.pki / 'apiserver.key'}",
                    f"--client-ca-file={self.ca_file}",
                    f"--service-account-key-file={self.pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={self.pki / 'sa.key'}",
                    "--allow-privileged=true",
                    "--v=1",
                    *(self._node_apiserver_flags(node) if node else self._loopback_apiserver_flags(api_port)),
                ],
            )
            self._wait("kube-apiserver", f"{self.server}/readyz", deadline=started + timeout, tls=True)
            if self._with_kcm:
                self._spawn(
                    "kube-controller-manager",
                    [
                        str(bin_dir / "kube-controller-manager"),
                        "--leader-elect=false",
                        "--secure-port=0",
                        f"--root-ca-file={self.ca_file}",
                        f"--service-account-private-key-file={self.pki / 'sa.key'}",
                        "--v=1",
                        *(self._node_kcm_flags(node) if node else self._loopback_kcm_flags()),
                    ],
                )
        except BaseException:
            self.stop()
            raise
        logger.info(
            "Started the control plane server=%s seconds=%.1f", self.server, time.monotonic() - started
        )
        self._save_state()
        return self

    def stop(self) -> None:
        for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
            proc = self._procs.pop(name, None)
            if proc is not None:
                _terminate(proc.pid, proc)
        for handle in self._logs:
            handle.close()  # type: ignore[attr-defined]  # file objects opened by _spawn
        self._logs.clear()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self._procs.items()}

    def forget(self) -> None:
        """Drops the handles of processes someone else stopped (the node's tear-down stops them by pid)."""
        for proc in self._procs.values():
            proc.poll()
        self._procs.clear()
        for handle in self._logs:
            handle.close()  # type: ignore[attr-defined]  # file objects opened by _spawn
        self._logs.clear()

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args], input=input, capture_output=True, text=True, env=self.env(), check=check
        )

    def identity_kubeconfig(self, identity: str) -> Path:
        """The kubeconfig of one of the node's identities (`kcm`, `scheduler`, `kubelet`, `kube-proxy`)."""
        return self.directory / f"{identity}.kubeconfig"

    def issue(self, common_name: str, hosts: tuple[str, ...]) -> tuple[bytes, bytes]:
        """A serving certificate signed by the cluster CA: (certificate PEM, key PEM)."""
        pair = self._ca.issue(common_name, hosts=hosts)
        return pair.cert_pem, pair.key_pem

    # Internals --------------------------------------------------------------------------------------

    def _loopback_apiserver_flags(self, api_port: int) -> list[str]:
        # No pods ever run: no endpoints for the `kubernetes` Service, no ServiceAccount tokens.
        return [
            "--endpoint-reconciler-type=none",
            "--authorization-mode=RBAC",
            f"--service-account-issuer=https://127.0.0.1:{api_port}",
            f"--service-cluster-ip-range={LOOPBACK_SERVICE_RANGE}",
            "--disable-admission-plugins=ServiceAccount",
        ]

    def _node_apiserver_flags(self, node: NodeAddressing) -> list[str]:
        # Pods reach the API server through the `kubernetes` Service (its endpoint is the bridge address) with
        # projected ServiceAccount tokens; `kubectl logs/exec` reach the kubelet with a client certificate.
        return [
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={node.service_range}",
            f"--kubelet-client-certificate={self.pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={self.pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    def _loopback_kcm_flags(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            "--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller",
            f"--service-cluster-ip-range={LOOPBACK_SERVICE_RANGE}",
        ]

    def _node_kcm_flags(self, node: NodeAddressing) -> list[str]:
        # Every default controller (Deployments, EndpointSlices, PV binding, ...), each with its own
        # ServiceAccount as a real cluster runs them.
        kubeconfig = self.identity_kubeconfig("kcm")
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={node.service_range}",
            "--allocate-node-cidrs=false",
        ]

    def _write_pki(self) -> None:
        ca = CertificateAuthority("kschema-local-ca")
        self._ca = ca
        (self.pki / "ca.crt").write_bytes(ca.cert_pem)
        hosts = ["127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
        if self._node:
            hosts += [self._node.address, self._node.service_ip(1), "kubernetes.default.svc.cluster.local"]
        else:
            hosts.append("10.0.0.1")
        ca.issue("kube-apiserver", hosts=tuple(hosts)).write(
            self.pki / "apiserver.crt", self.pki / "apiserver.key"
        )
        ca.issue("admin", organizations=("system:masters",), client=True).write(
            self.pki / "admin.crt", self.pki / "admin.key"
        )
        if self._node:
            identities = {
                "kcm": ("system:kube-controller-manager", ()),
                "scheduler": ("system:kube-scheduler", ()),
                "kubelet": (f"system:node:{self._node.node_name}", ("system:nodes",)),
                "kube-proxy": ("system:kube-proxy", ()),
                "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("system:masters",)),
            }
            for name, (cn, orgs) in identities.items():
                ca.issue(cn, organizations=orgs, client=True).write(
                    self.pki / f"{name}.crt", self.pki / f"{name}.key"
                )
        private, public = service_account_key_pem()
        (self.pki / "sa.key").write_bytes(private)
        (self.pki / "sa.pub").write_bytes(public)

    def _write_kubeconfig(self) -> None:
        self._write_identity_kubeconfig("admin", self.kubeconfig)
        if self._node:
            for name in ("kcm", "scheduler", "kubelet", "kube-proxy"):
                self._write_identity_kubeconfig(name, self.identity_kubeconfig(name))

    def _write_identity_kubeconfig(self, name: str, path: Path) -> None:
        def b64(name: str) -> str:
            return base64.b64encode((self.pki / name).read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kschema-local",
                    "cluster": {"server": self.server, "certificate-authority-data": b64("ca.crt")},
                }
            ],
            "users": [
                {
                    "name": name,
                    "user": {
                        "client-certificate-data": b64(f"{name}.crt"),
                        "client-key-data": b64(f"{name}.key"),
                    },
                }
            ],
            "contexts": [{"name": "kschema-local", "context": {"cluster": "kschema-local", "user": name}}],
            "current-context": "kschema-local",
        }
        path.write_text(yaml.safe_dump(config))

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115  # closed in stop()
        self._logs.append(log)
        self._procs[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=self._detach,
        )

    def _wait(self, name: str, url: str, *, deadline: float, tls: bool = False) -> None:
        context = None
        if tls:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        last = ""
        while time.monotonic() < deadline:
            proc = self._procs[name]
            if proc.poll() is not None:
                raise ControlPlaneError(f"{name} exited with {proc.returncode}:\n{self._tail(name)}")
            try:
                with urllib.request.urlopen(url, timeout=2, context=context) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise ControlPlaneError(f"{name} was not ready at {url} in time ({last}):\n{self._tail(name)}")

    def _tail(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _save_state(self) -> None:
        state = _State(
            directory=str(self.directory),
            kubeconfig=str(self.kubeconfig),
            server=self.server,
            pids={name: proc.pid for name, proc in self._procs.items()},
        )
        (self.directory / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))


def _terminate(pid: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            if proc.poll() is not None:
                return
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if proc is not None:
        proc.wait()


def start_detached(directory: Path = DEFAULT_STATE_DIR) -> ControlPlane:
    """Starts a control plane that outlives this process (for `kschema dev up` and the demo)."""
    stop_detached(directory)
    plane = ControlPlane(directory, detach=True)
    plane.start()
    return plane


def stop_detached(directory: Path = DEFAULT_STATE_DIR) -> bool:
    """Stops a control plane started by `start_detached`; returns whether one was running."""
    state_path = directory / STATE_FILE
    if not state_path.exists():
        return False
    state = json.loads(state_path.read_text())
    for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
        pid = state["pids"].get(name)
        if pid:
            _terminate(int(pid))
    shutil.rmtree(directory, ignore_errors=True)
    return True
