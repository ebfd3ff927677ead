"""A one-node Kubernetes cluster on this host that runs real pods: containerd (CRI) with the CNI bridge
plugins, the control plane on the bridge's address (so pods reach it through the `kubernetes` Service) with
every default controller, kube-scheduler, the kubelet, kube-proxy, CoreDNS and a local-path StorageClass.
Images are loaded straight into containerd; no registry is involved.

It changes host-wide state (iptables, sysctls, cgroups, a bridge, mounts), so it needs root, runs at most
once per machine (a lock file), and `stop()` restores what `start()` recorded, also after a failed start.
Used by the node tests (a session fixture), `kschema dev up --node` and `make demo`."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import yaml

from kschema.devcluster import hoststate, teardown
from kschema.devcluster.addons import (
    COREDNS_IMAGE,
    PAUSE_IMAGE,
    cni_config,
    containerd_config,
    coredns,
    kube_proxy_config,
    kubelet_config,
)
from kschema.devcluster.controlplane import (
    REPO_ROOT,
    ControlPlane,
    ControlPlaneError,
    NodeAddressing,
    build_binaries,
)
from kschema.devcluster.ociimage import ImageFile, ImageSpec, write_archive
from kschema.devcluster.provisioner import storage_class

logger = logging.getLogger(__name__)

NODE_BUILD_SCRIPT = REPO_ROOT / "dev" / "node" / "build.sh"
DEFAULT_NODE_DIR = REPO_ROOT / ".kschema" / "node"
NODE_STATE = "node.json"
LOCK_FILE = Path("/run/lock/kschema-node.lock")

BRIDGE = "kschema0"
POD_CIDR = "10.244.0.0/24"
NODE_ADDRESS = "10.244.0.1"
SERVICE_RANGE = "10.96.0.0/16"
DNS_IP = "10.96.0.10"
NODE_NAME = "kschema-node"
# Stopped in this order: the node first, the control plane last.
_NODE_PROCESSES = ("provisioner", "kube-proxy", "kubelet", "kube-scheduler", "containerd")


class NodeError(ControlPlaneError):
    pass


def build_node_binaries() -> Path:
    """The folder holding kubelet, kube-proxy, kube-scheduler, coredns and pause (built when missing)."""
    override = os.environ.get("KSCHEMA_NODE_BIN")
    if override:
        return Path(override)
    done = subprocess.run(["bash", str(NODE_BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NodeError(f"building the node failed:\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def missing_prerequisites() -> list[str]:
    """What this host lacks to run a node (empty when it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for tool in ("containerd", "runc", "ctr", "iptables", "ip", "kubectl"):
        if shutil.which(tool) is None:
            missing.append(tool)
    if not Path("/usr/lib/cni/bridge").exists():
        missing.append("containernetworking-plugins")
    return missing


class Node:
    def __init__(self, directory: Path | None = None, *, detach: bool = False) -> None:
        self._owns_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="kschema-node-", dir="/var/tmp"))
        self._detach = detach
        self._lock: IO[str] | None = None
        self._pids: dict[str, int] = {}
        self.plane = ControlPlane(
            self.directory / "controlplane",
            detach=detach,
            node=NodeAddressing(NODE_ADDRESS, 6443, SERVICE_RANGE, NODE_NAME),
        )

    # Paths ------------------------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @property
    def socket(self) -> Path:
        return self.directory / "containerd" / "containerd.sock"

    @property
    def volumes(self) -> Path:
        return self.directory / "volumes"

    def env(self) -> dict[str, str]:
        return self.plane.env()

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["kubectl", *args], input=input, capture_output=True, text=True, env=self.env(), timeout=timeout
        )
        if check and done.returncode != 0:
            raise NodeError(f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    def apply(self, documents: list[dict[str, Any]]) -> None:
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))

    def load_image(self, archive: Path) -> None:
        """Imports an image archive (`docker save` or OCI layout) into the node's containerd."""
        load_into(self.directory, archive)

    # Start ------------------------------------------------------------------------------------------

    def start(self, timeout: float = 240.0) -> Node:
        missing = missing_prerequisites()
        if missing:
            raise NodeError(f"this host cannot run a node; missing: {', '.join(missing)}")
        started = time.monotonic()
        build_binaries()
        node_bin = build_node_binaries()
        self._take_lock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # Recorded before anything changes the host; stop() restores it.
            hoststate.snapshot().save(self.directory / "host.json")
            self._save()
            self._network()
            self._containerd(node_bin)
            self.plane.start()
            self._save()
            self._node_processes(node_bin)
            self._wait_node_ready(started + timeout)
            self.apply([storage_class(), *coredns(DNS_IP)])
            self._spawn(
                "provisioner",
                [
                    sys.executable,
                    "-m",
                    "kschema.devcluster.provisioner",
                    f"--kubeconfig={self.kubeconfig}",
                    f"--pki={self.plane.pki}",
                    f"--root={self.volumes}",
                    f"--node-name={NODE_NAME}",
                ],
            )
            self._save()
            remaining = max(10.0, started + timeout - time.monotonic())
            self.kubectl(
                "-n", "kube-system", "rollout", "status", "deploy/coredns", f"--timeout={int(remaining)}s",
                timeout=remaining + 30,
            )  # fmt: skip
        except BaseException:
            logger.error("The node failed to start; restoring the host")
            self.stop()
            raise
        logger.info("Started the node seconds=%.1f", time.monotonic() - started)
        return self

    def _take_lock(self) -> None:
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        handle = LOCK_FILE.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise NodeError(f"another local node is running on this host (lock {LOCK_FILE})") from None
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle

    def _network(self) -> None:
        if (Path("/sys/class/net") / BRIDGE).exists():
            raise NodeError(f"interface {BRIDGE} already exists; is another node running?")
        # The bridge exists before the API server so its address can be bound; the CNI plugin adopts it.
        for argv in (
            ["ip", "link", "add", BRIDGE, "type", "bridge"],
            ["ip", "addr", "add", f"{NODE_ADDRESS}/24", "dev", BRIDGE],
            ["ip", "link", "set", BRIDGE, "up"],
        ):
            subprocess.run(argv, check=True, capture_output=True)
        for name in ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"):
            Path("/proc/sys", name).write_text("1")

    def _containerd(self, node_bin: Path) -> None:
        cdir, cni = self.directory / "containerd", self.directory / "cni"
        (cni / "net.d").mkdir(parents=True, exist_ok=True)
        cdir.mkdir(parents=True, exist_ok=True)
        (cdir / "config.toml").write_text(containerd_config(cdir, cni))
        (cni / "net.d" / "10-kschema.conflist").write_text(
            json.dumps(cni_config(BRIDGE, POD_CIDR, NODE_ADDRESS, cni / "ipam"))
        )
        self._spawn("containerd", ["containerd", "--config", str(cdir / "config.toml")])
        deadline = time.monotonic() + 30
        while not self._ctr_ready():
            if time.monotonic() > deadline:
                raise NodeError(f"containerd did not start:\n{self._tail('containerd')}")
            time.sleep(0.2)
        for spec in (
            ImageSpec(PAUSE_IMAGE, (ImageFile(node_bin / "pause", "/pause"),), ("/pause",)),
            ImageSpec(COREDNS_IMAGE, (ImageFile(node_bin / "coredns", "/coredns"),), ("/coredns",)),
        ):
            # Keyed by the binary's build, so a rebuilt binary gets a new archive.
            built = spec.files[0].source.stat().st_mtime_ns
            archive = node_bin.parent / "images" / f"{spec.name.split('/')[-1].replace(':', '-')}-{built}.tar"
            if not archive.exists():
                archive.parent.mkdir(exist_ok=True)
                write_archive(spec, archive.with_suffix(".partial"))
                archive.with_suffix(".partial").rename(archive)
            self.load_image(archive)

    def _ctr_ready(self) -> bool:
        done = subprocess.run(
            ["ctr", "--address", str(self.socket), "version"], capture_output=True, check=False
        )
        return done.returncode == 0

    def _node_processes(self, node_bin: Path) -> None:
        d, pki = self.directory, self.plane.pki
        (d / "kubelet").mkdir(exist_ok=True)
        (d / "pod-logs").mkdir(exist_ok=True)
        (d / "kubelet.yaml").write_text(
            yaml.safe_dump(
                kubelet_config(
                    address=NODE_ADDRESS,
                    ca_file=pki / "ca.crt",
                    socket=self.socket,
                    dns_ip=DNS_IP,
                    pod_cidr=POD_CIDR,
                    logs=d / "pod-logs",
                )
            )
        )
        (d / "kube-proxy.yaml").write_text(
            yaml.safe_dump(
                kube_proxy_config(
                    kubeconfig=self.plane.identity_kubeconfig("kube-proxy"),
                    node_name=NODE_NAME,
                    address=NODE_ADDRESS,
                    pod_cidr=POD_CIDR,
                )
            )
        )
        scheduler = self.plane.identity_kubeconfig("scheduler")
        self._spawn(
            "kube-scheduler",
            [
                str(node_bin / "kube-scheduler"),
                f"--kubeconfig={scheduler}",
                f"--authentication-kubeconfig={scheduler}",
                f"--authorization-kubeconfig={scheduler}",
                "--leader-elect=false",
                "--secure-port=0",
                "--v=1",
            ],
        )
        self._spawn(
            "kubelet",
            [
                str(node_bin / "kubelet"),
                f"--config={d / 'kubelet.yaml'}",
                f"--kubeconfig={self.plane.identity_kubeconfig('kubelet')}",
                f"--root-dir={d / 'kubelet'}",
                f"--cert-dir={d / 'kubelet' / 'pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_ADDRESS}",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-proxy", [str(node_bin / "kube-proxy"), f"--config={d / 'kube-proxy.yaml'}", "--v=1"]
        )
        self._save()

    def _wait_node_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            for name in ("kubelet", "kube-proxy", "kube-scheduler"):
                if not teardown.alive(self._pids[name]):
                    raise NodeError(f"{name} exited:\n{self._tail(name)}")
            done = self.kubectl(
                "get",
                "node",
                NODE_NAME,
                "-o",
                "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            )
            if done.stdout.strip() == "True":
                return
            time.sleep(0.5)
        raise NodeError(f"the node did not become Ready in time:\n{self._tail('kubelet')}")

    @property
    def address(self) -> str:
        return NODE_ADDRESS

    def spawn(self, name: str, argv: list[str]) -> None:
        """Starts a host process that belongs to the node (cert-manager, ...): stopped, by pid, before the
        node itself."""
        self._spawn(name, argv)
        self._save()

    def _spawn(self, name: str, argv: list[str]) -> None:
        with (self.directory / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=self._detach,
            )
        self._pids[name] = proc.pid

    def _tail(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _save(self) -> None:
        state = {
            "directory": str(self.directory),
            "kubeconfig": str(self.kubeconfig),
            "pids": self._pids,
            "controlplane_pids": self.plane.pids(),
            "owns_directory": self._owns_directory,
        }
        (self.directory / NODE_STATE).write_text(json.dumps(state, indent=2))

    # Stop -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._save()
        stop_node(self.directory, remove=self._owns_directory)
        self.plane.forget()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_node(directory: Path = DEFAULT_NODE_DIR, *, remove: bool = True) -> bool:
    """Stops a node (started in this process or detached) from its state file and restores the host.
    Returns whether one was there."""
    return teardown.stop_from_state(
        directory, state_file=NODE_STATE, bridge=BRIDGE, node_processes=_NODE_PROCESSES, remove=remove
    )


def load_into(directory: Path, archive: Path) -> None:
    """Imports an image archive into the containerd of the node whose folder is `directory`."""
    socket = directory / "containerd" / "containerd.sock"
    done = subprocess.run(
        ["ctr", "--address", str(socket), "-n", "k8s.io", "images", "import", str(archive)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise NodeError(f"importing {archive} failed:\n{done.stderr}")


def start_detached(directory: Path = DEFAULT_NODE_DIR) -> Node:
    """Starts a node that outlives this process (`kschema dev up --node`, the demo)."""
    stop_node(directory)
    # A fresh start: the last run's folder (kept for its logs) holds etcd data and keys of another cluster.
    hoststate.unmount_under(directory)
    shutil.rmtree(directory, ignore_errors=True)
    node = Node(directory, detach=True)
    node.start()
    if node._lock is not None:  # the lock protects the start; the state file marks the running node
        node._lock.close()
        node._lock = None
    return node
