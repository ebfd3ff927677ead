"""Starts and stops etcd, kube-apiserver and kube-controller-manager as local processes on free loopback
ports, with generated certificates and an admin kubeconfig. Used by the test suite (a session fixture),
the demo and `kschema dev up|down`."""

from __future__ import annotations

import base64
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


class ControlPlaneError(RuntimeError):
    pass


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
    ) -> None:
        self._owns_directory = directory is None
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
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self.server = f"https://127.0.0.1:{api_port}"
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
                    "--bind-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    "--advertise-address=127.0.0.1",
                    "--endpoint-reconciler-type=none",
                    f"--cert-dir={self.pki}",
                    f"--tls-cert-file={self.pki / 'apiserver.crt'}",
                    f"--tls-private-key-file={self.pki / 'apiserver.key'}",
                    f"--client-ca-file={self.ca_file}",
                    "--authorization-mode=RBAC",
                    f"--service-account-issuer=https://127.0.0.1:{api_port}",
                    f"--service-account-key-file={self.pki / 'sa.pub'}",
                    f"--service-account-signing-key-file={self.pki / 'sa.key'}",
                    "--service-cluster-ip-range=10.0.0.0/24",
                    "--allow-privileged=true",
                    "--disable-admission-plugins=ServiceAccount",
                    "--v=1",
                ],
            )
            self._wait("kube-apiserver", f"{self.server}/readyz", deadline=started + timeout, tls=True)
            if self._with_kcm:
                self._spawn(
                    "kube-controller-manager",
                    [
                        str(bin_dir / "kube-controller-manager"),
                        f"--kubeconfig={self.kubeconfig}",
                        "--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller",
                        "--leader-elect=false",
                        "--secure-port=0",
                        f"--root-ca-file={self.ca_file}",
                        f"--service-account-private-key-file={self.pki / 'sa.key'}",
                        "--service-cluster-ip-range=10.0.0.0/24",
                        "--v=1",
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

    # Internals --------------------------------------------------------------------------------------

    def _write_pki(self) -> None:
        ca = CertificateAuthority("kschema-local-ca")
        (self.pki / "ca.crt").write_bytes(ca.cert_pem)
        ca.issue(
            "kube-apiserver",
            hosts=(
                "127.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "10.0.0.1",
            ),
        ).write(self.pki / "apiserver.crt", self.pki / "apiserver.key")
        ca.issue("admin", organizations=("system:masters",), client=True).write(
            self.pki / "admin.crt", self.pki / "admin.key"
        )
        private, public = service_account_key_pem()
        (self.pki / "sa.key").write_bytes(private)
        (self.pki / "sa.pub").write_bytes(public)
        self._ca = ca

    def _write_kubeconfig(self) -> None:
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
                    "name": "admin",
                    "user": {
                        "client-certificate-data": b64("admin.crt"),
                        "client-key-data": b64("admin.key"),
                    },
                }
            ],
            "contexts": [{"name": "kschema-local", "context": {"cluster": "kschema-local", "user": "admin"}}],
            "current-context": "kschema-local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

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
