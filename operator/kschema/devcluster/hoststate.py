"""The host-wide state a local node (and the image build's dockerd) changes, recorded before it starts and
restored when it stops: sysctls the kubelet rewrites, iptables chains and rules kube-proxy, the kubelet and
the CNI plugins add (kube-proxy's own `--cleanup` leaves several behind), mounts, network interfaces,
`/kubepods` and `/docker` cgroups, the host paths the kubelet writes regardless of its root directory, and
the processes that must be gone afterwards.

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

# Rewritten by the kubelet at start (it cannot be told not to), set by the node for pod networking, or ones
# kube-proxy would change unless told not to (route_localnet, conntrack).
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.ipv4.conf.all.route_localnet",
    "net.netfilter.nf_conntrack_max",
)
# Created outside the node's folder whatever it is told: by the kubelet (device-plugin socket, log links)
# and by containerd's shims (their sockets).
HOST_PATHS = ("/var/lib/kubelet", "/var/log/containers", "/run/containerd")
IPTABLES = ("iptables", "ip6tables")
TABLES = ("filter", "nat", "mangle")
_OUR_CHAINS = re.compile(r"^(KUBE-|CNI-)")
_BUILTIN_CHAINS = {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}
CGROUP_ROOT = Path("/sys/fs/cgroup")
# cgroups made at the root of every hierarchy: the kubelet's pods, dockerd's build containers.
_CGROUP_NAMES = ("kubepods", "docker")
# Programs only the node and the image build start on this host; one left running after tear-down is a leak.
# (etcd, kube-apiserver, PostgreSQL and kschema also run in the fast tests: those count as the node's when
# they name its folder on their command line or run in a pod's cgroup.)
WATCHED = frozenset(
    {
        "kube-scheduler", "kubelet", "kube-proxy", "containerd", "containerd-shim", "containerd-shim-runc-v2",
        "runc", "dockerd", "docker-proxy", "coredns", "pause", "cainjector",
    }
)  # fmt: skip


@dataclass
class HostSnapshot:
    sysctls: dict[str, str] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)  # "iptables/nat" -> chains present before
    links: list[str] = field(default_factory=list)
    host_paths: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    rules: dict[str, list[str]] = field(default_factory=dict)  # "iptables/nat" -> rules present before
    mounts: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)  # "pid name" of the watched programs

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


def _rules(binary: str, table: str) -> list[str]:
    done = _run(f"{binary}-save", "-t", table)
    return sorted({line for line in done.stdout.splitlines() if line.startswith("-A ")})


def _links() -> list[str]:
    return sorted(p.name for p in Path("/sys/class/net").iterdir())


def _kubepods_cgroups() -> list[str]:
    if not CGROUP_ROOT.is_dir():
        return []
    return sorted(str(p) for name in _CGROUP_NAMES for p in CGROUP_ROOT.glob(f"*/{name}"))


def _mounts() -> list[str]:
    return sorted({line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()})


def processes(markers: tuple[str, ...] = ()) -> list[str]:
    """`pid name` of every running watched program, and of every process that runs in a pod's or a build
    container's cgroup or names one of `markers` (the node's folder, ...) on its command line."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            cgroups = (proc / "cgroup").read_text()
        except OSError:
            continue  # gone meanwhile, or a kernel thread
        if not argv or not argv[0]:
            continue
        name = os.path.basename(argv[0].decode(errors="replace"))
        command = b" ".join(argv).decode(errors="replace")
        contained = any(f":/{group}/" in cgroups or f":/{group}\n" in cgroups for group in _CGROUP_NAMES)
        if name in WATCHED or contained or any(m in command for m in markers):
            found.append(f"{proc.name} {name}")
    return sorted(found, key=lambda entry: int(entry.split()[0]))


def snapshot() -> HostSnapshot:
    snap = HostSnapshot()
    for name in SYSCTLS:
        path = _sysctl_path(name)
        if path.exists():
            snap.sysctls[name] = path.read_text().strip()
    for binary in IPTABLES:
        for table in TABLES:
            snap.chains[f"{binary}/{table}"] = _chains(binary, table)
            snap.rules[f"{binary}/{table}"] = _rules(binary, table)
    snap.links = _links()
    snap.host_paths = [p for p in HOST_PATHS if os.path.lexists(p)]
    snap.cgroups = _kubepods_cgroups()
    snap.mounts = _mounts()
    snap.processes = processes()
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


def leftovers(snap: HostSnapshot, *, bridge: str, markers: tuple[str, ...] = ()) -> list[str]:
    """What differs from the snapshot (the tests assert this is empty after tear-down): new iptables chains
    and rules in chains that were there before, interfaces, cgroups, mounts, sysctls, host paths, and
    watched processes (or processes naming one of `markers`) that were not running before."""
    found = []
    for binary in IPTABLES:
        for table in TABLES:
            key = f"{binary}/{table}"
            before = set(snap.chains.get(key, []))
            now = _chains(binary, table)
            new_chains = {c for c in now if c not in before}
            found += [f"chain {key}/{c}" for c in now if c in new_chains]
            old_rules = set(snap.rules.get(key, []))
            found += [
                f"rule {key}: {rule}"
                for rule in _rules(binary, table)
                if rule not in old_rules and rule.split()[1] not in new_chains
            ]
    found += [f"link {n}" for n in _links() if n not in snap.links]
    found += [f"cgroup {g}" for g in _kubepods_cgroups() if g not in snap.cgroups]
    found += [f"mount {m}" for m in _mounts() if m not in snap.mounts]
    running_before = set(snap.processes)
    found += [f"process {p}" for p in processes(markers) if p not in running_before]
    for name, value in snap.sysctls.items():
        current = _sysctl_path(name).read_text().strip()
        if current != value:
            found.append(f"sysctl {name}={current} (was {value})")
    found += [f"path {p}" for p in HOST_PATHS if p not in snap.host_paths and os.path.lexists(p)]
    return found
