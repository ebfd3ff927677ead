"""What the operator benchmark reads besides readiness: the API server's request counters, the operator's
memory, a CPU profile taken from outside, and the read API it polls for new versions."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kschema.devcluster import ControlPlane
from kschema.model import GROUP, VERSION

_REQUEST_LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
RequestKey = tuple[str, str, str]  # verb, resource, subresource
IDLE_FRAMES = ("_worker (thread.py", "_do_waitpid (unix_events.py", "wait (threading.py")


def api_requests(plane: ControlPlane) -> Counter[RequestKey]:
    """The API server's `apiserver_request_total`, summed by verb, resource and subresource."""
    metrics = plane.kubectl("get", "--raw", "/metrics", check=True).stdout
    counts: Counter[RequestKey] = Counter()
    for line in metrics.splitlines():
        found = _REQUEST_LINE.match(line)
        if found is None:
            continue
        labels = dict(_LABEL.findall(found["labels"]))
        key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        counts[key] += int(float(found["value"]))
    return counts


def request_table(before: Counter[RequestKey], after: Counter[RequestKey], objects: int) -> list[str]:
    """The writes and reads made between two readings (watches and the bench's own polling included),
    most frequent first, with their count per object."""
    delta = after - before
    lines = []
    for (verb, kind, sub), count in delta.most_common(14):
        what = f"{verb} {kind}{'/' + sub if sub else ''}"
        lines.append(f"    {what:<38} {count:>7}  ({count / objects:.2f} per object)")
    return lines


class ReadyWatch:
    """How many objects of one kind in one namespace are Ready, kept from a watch: one event per change.
    Polling with a LIST of every object instead costs the API server a serialisation of thousands of
    objects per poll, CPU the operator under test then lacks on a small machine."""

    def __init__(self, api: client.CustomObjectsApi, namespace: str, plural: str) -> None:
        self._api, self._namespace, self._plural = api, namespace, plural
        self._ready: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch {plural}", daemon=True)
        self._thread.start()

    def counts(self) -> tuple[int, int]:
        """(Ready, all) as of the last event seen; raises what stopped the watch."""
        if self._error is not None:
            raise RuntimeError(f"the watch of {self._plural} failed") from self._error
        with self._lock:
            return sum(self._ready.values()), len(self._ready)

    def stop(self) -> None:
        """Without waiting: the thread ends with its watch request (at most its timeout later)."""
        self._stopped.set()

    def _list(self) -> str:
        listed: Any = self._api.list_namespaced_custom_object(GROUP, VERSION, self._namespace, self._plural)
        with self._lock:
            self._ready = {item["metadata"]["name"]: is_ready(item) for item in listed["items"]}
        return str(listed["metadata"]["resourceVersion"])

    def _run(self) -> None:
        try:
            version = self._list()
            while not self._stopped.is_set():
                try:
                    version = self._follow(version)
                except ApiException as error:
                    if error.status != 410:  # Gone: the version is too old, so list again
                        raise
                    version = self._list()
        except BaseException as error:  # reported by `counts`, on the bench's thread
            self._error = error

    def _follow(self, version: str) -> str:
        """Reads the raw watch stream, one JSON document per line, each parsed once (the client's `Watch`
        parses every event twice and serialises it once more in between: CPU the machine under test
        would lack)."""
        response: Any = self._api.list_namespaced_custom_object(
            GROUP,
            VERSION,
            self._namespace,
            self._plural,
            watch=True,
            resource_version=version,
            timeout_seconds=30,
            allow_watch_bookmarks=True,
            _preload_content=False,
        )
        pending = b""
        try:
            for chunk in response.stream(amt=None, decode_content=False):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        version = self._handle(json.loads(line))
                if self._stopped.is_set():
                    break
        finally:
            response.release_conn()
        return version

    def _handle(self, event: dict[str, Any]) -> str:
        """Takes one event in; returns the resource version it brings."""
        found = event["object"]
        if event["type"] == "ERROR":
            raise ApiException(status=found.get("code"), reason=found.get("message"))
        if event["type"] == "BOOKMARK":
            return str(found["metadata"]["resourceVersion"])
        with self._lock:
            if event["type"] == "DELETED":
                self._ready.pop(found["metadata"]["name"], None)
            else:
                self._ready[found["metadata"]["name"]] = is_ready(found)
        return str(found["metadata"]["resourceVersion"])


def is_ready(found: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (found.get("status") or {}).get("conditions") or ()
    )


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and of its children, live or reaped (the worker pool)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = _own_ticks(pid)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(OSError):
            total += _own_ticks(int(child))
    return total / ticks


def cpu_shares(plane: ControlPlane, **processes: int) -> dict[str, float]:
    """CPU seconds so far of the control plane's processes, of the named ones (children included) and of
    this process with its reaped children (the kubectl runs): a difference of two readings says where
    the machine's cores went."""
    shares = {name: _own_ticks(pid) / os.sysconf("SC_CLK_TCK") for name, pid in plane.pids().items()}
    shares.update({name: cpu_seconds(pid) for name, pid in processes.items()})
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    shares["bench (its watches)"] = own.ru_utime + own.ru_stime
    shares["kubectl (reaped runs)"] = children.ru_utime + children.ru_stime
    return shares


def cpu_table(before: dict[str, float], after: dict[str, float], wall: float) -> list[str]:
    """CPU seconds per process between two readings, and as cores busy over `wall` seconds."""
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    lines = [f"    {name:<24} {cpu:>7.1f} s CPU  ({cpu / wall:.2f} cores)" for name, cpu in spent.items()]
    total = sum(spent.values())
    cores = os.cpu_count()
    lines.append(f"    {'all of them':<24} {total:>7.1f} s CPU  ({total / wall:.2f} of {cores} cores)")
    return lines


def _own_ticks(pid: int) -> int:
    # Fields after the command name (which may hold spaces): utime, stime, cutime, cstime are 14-17.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(x) for x in fields[11:15])


def start_profile(pid: int, output: Path) -> subprocess.Popen[bytes] | None:
    """A py-spy sampling profile of `pid` (raw collapsed stacks) while the burst runs; None without py-spy."""
    spy = shutil.which("py-spy")
    if spy is None:
        return None
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "50",
            "--function",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(spy: subprocess.Popen[bytes] | None, output: Path) -> list[str]:
    """Stops py-spy and returns the functions with the most samples on the stack (inclusive) and on top
    (self), as report lines."""
    if spy is None:
        return []
    spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()
        return []
    if not output.exists():
        return []
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = threads = 0
    for line in output.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f.split(" (")[0] + " (" + f.rsplit("/", 1)[-1] if "/" in f else f for f in stack.split(";")]
        if frames[0].startswith("_bootstrap "):  # a thread of a pool: store calls, or waiting for work
            if not frames[-1].startswith(IDLE_FRAMES):
                threads += count
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    if not total:
        return []
    lines = [
        f"  profile of the event loop's thread: {total} samples at 50 Hz ({total / 50:.0f} s busy); "
        f"pool threads busy {threads / 50:.0f} s; inclusive %, self %:"
    ]
    for frame, count in inclusive.most_common(45):
        lines.append(f"    {100 * count / total:5.1f}% {100 * own[frame] / total:5.1f}%  {frame}")
    lines.append("  top self time:")
    for frame, count in own.most_common(15):
        lines.append(f"    {100 * count / total:5.1f}%  {frame}")
    return lines


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # a loopback URL of our own
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0


def wait_for_http(url: str, timeout: float, process: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + timeout
    while http_status(url) != 200:
        if process.poll() is not None:
            raise RuntimeError(f"the process serving {url} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout} s")
        time.sleep(0.1)
