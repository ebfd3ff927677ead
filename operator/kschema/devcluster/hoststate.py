"""The host-wide state a local node changes, recorded before it starts and restored when it stops: sysctls
the kubelet rewrites, iptables chains kube-proxy, the kubelet and the CNI plugins add (kube-proxy's own
`--cleanup` leaves several behind), mounts, network interfaces, `/kubepods` cgroups and the host paths the
kubelet writes regardless of its root directory.

The record is a JSON file in the node's state folder, so `kschema dev down` in another process can restore
what `kschema dev up` changed."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

# Rewritten by the kubelet at start (it cannot be told not to), or set by the node for pod networking.
SYSCTLS = (
    "vm.overcommit_memory",
    "kernel.panic",
    "kernel.panic_on_oops",
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
)
# Created outside the node's folder whatever it is told: by the kubelet (device-plugin socket, log links)
# and by containerd's shims (their sockets).
HOST_PATHS = ("/var/lib/kubelet", "/var/log/containers", "/run/containerd")
IPTABLES = ("iptables", "ip6tables")
TABLES = ("filter", "nat", "mangle")
_OUR_CHAINS = re.compile(r"^(KUBE-|CNI-)")
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class HostSnapshot:
    sysctls: dict[str, str] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)  # "iptables/nat" -> chains present before
    links: list[str] = field(default_factory=list)
    host_paths: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> HostSnapshot:
        return cls(**json.loads(path.read_text()))


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def _chains(binary: str, table: str) -> list[str]:
    done = _run(f"{binary}-save", "-t", table)
    return sorted(m.group(1) for m in re.finditer(r"^:(\S+)", done.stdout, re.MULTILINE))


def _links() -> list[str]:
    return sorted(p.name for p in Path("/sys/class/net").iterdir())


def _kubepods_cgroups() -> list[str]:
    if not CGROUP_ROOT.is_dir():
        return []
    return sorted(str(p) for p in CGROUP_ROOT.glob("*/kubepods"))


def snapshot() -> HostSnapshot:
    snap = HostSnapshot()
    for name in SYSCTLS:
        path = _sysctl_path(name)
        if path.exists():
            snap.sysctls[name] = path.read_text().strip()
    for binary in IPTABLES:
        for table in TABLES:
            snap.chains[f"{binary}/{table}"] = _chains(binary, table)
    snap.links = _links()
    snap.host_paths = [p for p in HOST_PATHS if os.path.lexists(p)]
    snap.cgroups = _kubepods_cgroups()
    return snap


def mounts_under(prefix: Path) -> list[str]:
    """Mount points at or below `prefix`, deepest first."""
    base = str(prefix).rstrip("/")
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point == base or point.startswith(base + "/"):
            found.append(point)
    return sorted(set(found), key=len, reverse=True)


def unmount_under(prefix: Path) -> None:
    for point in mounts_under(prefix):
        done = _run("umount", "-l", point)
        if done.returncode != 0:
            logger.warning("Could not unmount %s: %s", point, done.stderr.strip())


def remove_chains(snap: HostSnapshot) -> list[str]:
    """Deletes every KUBE-*/CNI-* chain that was not there before, and the rules that jump to them from the
    built-in chains. Returns what it removed."""
    removed = []
    for binary in IPTABLES:
        for table in TABLES:
            before = set(snap.chains.get(f"{binary}/{table}", []))
            dump = _run(f"{binary}-save", "-t", table).stdout
            ours = [c for c in _chains(binary, table) if _OUR_CHAINS.match(c) and c not in before]
            if not ours:
                continue
            targets = set(ours)
            for line in dump.splitlines():
                if not line.startswith("-A "):
                    continue
                parts = shlex.split(line)  # comments are quoted and hold spaces
                chain = parts[1]
                if chain in targets:
                    continue  # flushed with its chain
                if "-j" in parts and parts[parts.index("-j") + 1] in targets:
                    _run(binary, "-t", table, "-D", *parts[1:])
            for chain in ours:
                _run(binary, "-t", table, "-F", chain)
            for chain in ours:
                done = _run(binary, "-t", table, "-X", chain)
                if done.returncode != 0:
                    logger.warning("Could not delete %s %s/%s: %s", binary, table, chain, done.stderr.strip())
                removed.append(f"{binary}/{table}/{chain}")
    return removed


def restore(snap: HostSnapshot, *, bridge: str) -> None:
    """Puts back what the node changed. Runs after every node process has stopped."""
    remove_chains(snap)
    for link in _links():
        if link not in snap.links and (link == bridge or link.startswith("veth")):
            _run("ip", "link", "delete", link)
    for group in _kubepods_cgroups():
        if group in snap.cgroups:
            continue
        # Leaf first: cgroup folders can only be removed when empty of child groups.
        for path in sorted(Path(group).glob("**/"), key=lambda p: len(p.parts), reverse=True):
            try:
                path.rmdir()
            except OSError as exc:
                logger.warning("Could not remove cgroup %s: %s", path, exc)
    for name, value in snap.sysctls.items():
        path = _sysctl_path(name)
        try:
            if path.read_text().strip() != value:
                path.write_text(value)
        except OSError as exc:
            logger.warning("Could not restore sysctl %s=%s: %s", name, value, exc)
    for host_path in HOST_PATHS:
        if host_path not in snap.host_paths and os.path.lexists(host_path):
            unmount_under(Path(host_path))
            shutil.rmtree(host_path, ignore_errors=True)


def leftovers(snap: HostSnapshot, *, bridge: str) -> list[str]:
    """What differs from the snapshot (the tests assert this is empty after tear-down)."""
    found = []
    for binary in IPTABLES:
        for table in TABLES:
            before = set(snap.chains.get(f"{binary}/{table}", []))
            found += [
                f"chain {binary}/{table}/{c}"
                for c in _chains(binary, table)
                if _OUR_CHAINS.match(c) and c not in before
            ]
    found += [f"link {n}" for n in _links() if n not in snap.links and (n == bridge or n.startswith("veth"))]
    found += [f"cgroup {g}" for g in _kubepods_cgroups() if g not in snap.cgroups]
    for name, value in snap.sysctls.items():
        now = _sysctl_path(name).read_text().strip()
        if now != value:
            found.append(f"sysctl {name}={now} (was {value})")
    found += [f"path {p}" for p in HOST_PATHS if p not in snap.host_paths and os.path.lexists(p)]
    return found
