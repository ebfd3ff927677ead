"""The host-state record and restore the node's tear-down relies on, exercised on this host's own iptables,
sysctls and interfaces (root), each change undone by the code under test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kschema.devcluster import hoststate

pytestmark = [pytest.mark.node]


def _save(table: str) -> str:
    return subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True, check=True).stdout


def test_new_kube_chains_and_the_jumps_to_them_are_removed_but_older_ones_kept(tmp_path: Path) -> None:
    subprocess.run(["iptables", "-t", "filter", "-N", "KUBE-KSCHEMA-OLD"], check=True)
    try:
        snap = hoststate.snapshot()
        subprocess.run(["iptables", "-t", "filter", "-N", "KUBE-KSCHEMA-NEW"], check=True)
        subprocess.run(
            ["iptables", "-t", "filter", "-A", "OUTPUT", "-d", "192.0.2.7/32", "-m", "comment", "--comment",
             "kschema test rule", "-j", "KUBE-KSCHEMA-NEW"],
            check=True,
        )  # fmt: skip
        subprocess.run(["iptables", "-t", "filter", "-A", "KUBE-KSCHEMA-NEW", "-j", "RETURN"], check=True)
        assert hoststate.leftovers(snap, bridge="kschema-none") == [
            "chain iptables/filter/KUBE-KSCHEMA-NEW",
            'rule iptables/filter: -A OUTPUT -d 192.0.2.7/32 -m comment --comment "kschema test rule" '
            "-j KUBE-KSCHEMA-NEW",
        ]

        removed = hoststate.remove_chains(snap)

        assert removed == ["iptables/filter/KUBE-KSCHEMA-NEW"]
        dump = _save("filter")
        assert "KUBE-KSCHEMA-NEW" not in dump
        assert ":KUBE-KSCHEMA-OLD" in dump
        assert hoststate.leftovers(snap, bridge="kschema-none") == []
    finally:
        subprocess.run(["iptables", "-t", "filter", "-X", "KUBE-KSCHEMA-OLD"], check=False)


def test_sysctls_bridges_and_the_record_file_round_trip(tmp_path: Path) -> None:
    snap = hoststate.snapshot()
    snap.save(tmp_path / "host.json")
    loaded = hoststate.HostSnapshot.load(tmp_path / "host.json")
    assert loaded == snap
    assert set(loaded.sysctls) <= set(hoststate.SYSCTLS)
    panic = Path("/proc/sys/kernel/panic")
    before = panic.read_text().strip()
    subprocess.run(["ip", "link", "add", "kschema-t0", "type", "bridge"], check=True)
    panic.write_text(str(int(before) + 7))
    try:
        assert sorted(hoststate.leftovers(loaded, bridge="kschema-t0")) == [
            "link kschema-t0",
            f"sysctl kernel.panic={int(before) + 7} (was {before})",
        ]

        hoststate.restore(loaded, bridge="kschema-t0")

        assert panic.read_text().strip() == before
        assert not Path("/sys/class/net/kschema-t0").exists()
        assert hoststate.leftovers(loaded, bridge="kschema-t0") == []
    finally:
        panic.write_text(before)
        subprocess.run(["ip", "link", "delete", "kschema-t0"], capture_output=True, check=False)


def test_new_mounts_and_processes_that_name_the_node_are_leftovers_until_gone(tmp_path: Path) -> None:
    snap = hoststate.snapshot()
    point = tmp_path / "kschema-node-mount"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "kschema-test", str(point)], check=True)
    marker = str(tmp_path / "kschema-node-marker")
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(600)", marker])
    try:
        found = hoststate.leftovers(snap, bridge="kschema-none", markers=(marker,))

        assert found == [f"mount {point}", f"process {proc.pid} {Path(sys.executable).name}"]
    finally:
        proc.kill()
        proc.wait()
        hoststate.unmount_under(tmp_path)
    assert hoststate.leftovers(snap, bridge="kschema-none", markers=(marker,)) == []
