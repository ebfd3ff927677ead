"""Tear-down of the local node: every pod deleted while the kubelet still runs (so it tears their networks
and mounts down), the node's processes stopped by pid, containerd's leftover tasks removed, kube-proxy's
iptables chains cleaned, and the host restored from the record taken before the node started."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from kschema.devcluster import hoststate
from kschema.devcluster.cachedir import cache_dir

logger = logging.getLogger(__name__)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not reaped yet is a zombie: treat it as gone.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return status != "Z"


def _terminate(pid: int, timeout: float = 20.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass  # not our child (a detached node): poll instead
        if not alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _kubectl(kubeconfig: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", "--request-timeout=10s", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def _drain(kubeconfig: str) -> None:
    """Deletes every pod while the kubelet still runs, so that it tears their networks and mounts down."""
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        _kubectl(kubeconfig, "delete", kind, "--all", "--wait=false")
    _kubectl(
        kubeconfig,
        "delete",
        "deployments,statefulsets,daemonsets,replicasets,jobs",
        "--all",
        "-A",
        "--wait=false",
    )
    _kubectl(kubeconfig, "delete", "pods", "--all", "-A", "--grace-period=2", "--wait=false")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        done = _kubectl(kubeconfig, "get", "pods", "-A", "-o", "name")
        if done.returncode != 0 or not done.stdout.strip():
            return
        time.sleep(1)
    logger.warning("Pods were still running after 90 s; removing them from containerd")


def stop_from_state(
    directory: Path, *, state_file: str, bridge: str, node_processes: tuple[str, ...], remove: bool
) -> bool:
    """Stops a node (started in this process or detached) from its state file and restores the host.
    Returns whether one was there."""
    state_path = directory / state_file
    if not state_path.exists():
        return False
    state = json.loads(state_path.read_text())
    pids: dict[str, int] = state["pids"]
    cp_pids: dict[str, int] = state["controlplane_pids"]
    kubeconfig = state["kubeconfig"]
    if "kubelet" in pids and alive(pids["kubelet"]) and "kube-apiserver" in cp_pids:
        _drain(kubeconfig)
    for name in [n for n in pids if n not in node_processes] + ["provisioner", "kube-proxy", "kubelet"]:
        if name in pids:
            _terminate(pids[name])
    node_bin = os.environ.get("KSCHEMA_NODE_BIN") or str(
        cache_dir() / ("node-" + os.environ.get("KSCHEMA_K8S_VERSION", "v1.33.13")) / "bin"
    )
    proxy = Path(node_bin) / "kube-proxy"
    if proxy.exists():
        subprocess.run([str(proxy), "--cleanup"], capture_output=True, check=False, timeout=60)
    socket = directory / "containerd" / "containerd.sock"
    if "containerd" in pids and alive(pids["containerd"]):
        _remove_containers(socket)
    for name in ("kube-scheduler", "containerd"):
        if name in pids:
            _terminate(pids[name])
    for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
        if name in cp_pids:
            _terminate(cp_pids[name])
    hoststate.unmount_under(directory)
    host = directory / "host.json"
    if host.exists():
        hoststate.restore(hoststate.HostSnapshot.load(host), bridge=bridge)
    if remove:
        shutil.rmtree(directory, ignore_errors=True)
    else:
        state_path.unlink(missing_ok=True)
    return True


def _remove_containers(socket: Path) -> None:
    ctr = ["ctr", "--address", str(socket), "-n", "k8s.io"]

    def ids(*what: str) -> list[str]:
        done = subprocess.run([*ctr, *what, "ls", "-q"], capture_output=True, text=True, check=False)
        return done.stdout.split()

    for task in ids("tasks"):
        subprocess.run([*ctr, "tasks", "kill", "-s", "KILL", task], capture_output=True, check=False)
    deadline = time.monotonic() + 15
    while ids("tasks") and time.monotonic() < deadline:
        for task in ids("tasks"):
            subprocess.run([*ctr, "tasks", "rm", "-f", task], capture_output=True, check=False)
        time.sleep(0.5)
    for container in ids("containers"):
        subprocess.run([*ctr, "containers", "rm", container], capture_output=True, check=False)
