"""Processes for the read-API benchmarks: `kschema api` as shipped, a bare aiohttp server as the
baseline, `wrk` (C) as the load generator, and what the kernel and the API's own metrics say about
them (RSS, CPU time, the request-duration histogram)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What Confluent's serializers send.
ACCEPT = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"
READY_TIMEOUT_SECONDS = 120.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    started: float  # time.monotonic() when the process was spawned
    ready_seconds: float = 0.0  # spawn to the first 200 from /readyz
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process (not its worker processes)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _wait_ready(server: Server, path: str) -> None:
    deadline = server.started + READY_TIMEOUT_SECONDS
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.log.name}: exited with {server.process.returncode}:\n"
                f"{server.log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{server.url}{path}", timeout=5) as response:
                if response.status == 200:
                    server.ready_seconds = time.monotonic() - server.started
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.log.name}: not ready in {READY_TIMEOUT_SECONDS} s")
        time.sleep(0.02)  # polling a readiness condition with a deadline


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def _spawn(argv: list[str], env: Mapping[str, str], log: Path, port: int, ready: str) -> Iterator[Server]:
    with log.open("wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", log, started)
    try:
        _wait_ready(server, ready)
        yield server
    finally:
        _stop(process)


@contextlib.contextmanager
def kschema_api(store_url: str, workdir: Path, name: str = "api") -> Iterator[Server]:
    """`kschema api` as shipped (its CLI, worker pool and all), ready when `/readyz` says so."""
    port = free_port()
    env = {
        "KSCHEMA_STORE_URL": store_url,
        "KSCHEMA_API_HOST": "127.0.0.1",
        "KSCHEMA_API_PORT": str(port),
        "KSCHEMA_LOG_LEVEL": "WARNING",
    }
    argv = [str(Path(sys.executable).parent / "kschema"), "api"]
    with _spawn(argv, env, workdir / f"{name}.log", port, "/readyz") as server:
        yield server


@contextlib.contextmanager
def bare_server(source: str, workdir: Path, versions: int, subjects: int) -> Iterator[Server]:
    """The baseline: `bench.bare_api`, serving the bodies it copied from `source`."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "bench.bare_api",
        source,
        str(port),
        str(versions),
        str(subjects),
    ]
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with _spawn(argv, env, workdir / "bare.log", port, "/ready") as server:
        yield server


# wrk ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WrkResult:
    rps: float
    requests: int
    latency_ms: dict[str, float]  # "50", "75", "90", "99"


_LATENCY = re.compile(r"^\s+(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_SCALE = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def lua_script(workdir: Path, name: str, path_expr: str) -> Path:
    """A wrk script sending GETs whose path is the Lua expression `path_expr` (it may use `math.random`),
    with the `Accept` header Confluent's clients send."""
    script = workdir / f"{name}.lua"
    script.write_text(
        f'wrk.headers["Accept"] = "{ACCEPT}"\n'
        "local thread_seed = 0\n"
        "setup = function(thread)\n"
        "  thread_seed = thread_seed + 1\n"
        '  thread:set("seed", thread_seed)\n'
        "end\n"
        "init = function(args)\n"
        "  math.randomseed(7 * (seed or 1))\n"
        "end\n"
        "request = function()\n"
        f'  return wrk.format("GET", {path_expr})\n'
        "end\n"
    )
    return script


def _wrk_argv(url: str, script: Path, seconds: float, connections: int, threads: int) -> list[str]:
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]


def _wrk_result(url: str, stdout: str) -> WrkResult:
    for problem in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: (.*)"):
        found = re.search(problem, stdout)
        if found:
            raise RuntimeError(f"wrk against {url} saw errors ({found.group(0)}):\n{stdout}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", stdout)
    total = re.search(r"(\d+) requests in", stdout)
    if rate is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{stdout}")
    latency = {m.group(1): float(m.group(2)) * _SCALE[m.group(3)] for m in _LATENCY.finditer(stdout)}
    return WrkResult(float(rate.group(1)), int(total.group(1)), latency)


def wrk(
    url: str,
    script: Path,
    seconds: float,
    connections: int,
    threads: int = 2,
    cpus: frozenset[int] | None = None,
) -> WrkResult:
    """One wrk run; on `cpus` only when given (see `pin`)."""
    done = subprocess.run(
        _wrk_argv(url, script, seconds, connections, threads),
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )
    return _wrk_result(url, done.stdout)


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Confines every thread of process `pid` to `cpus` (its worker processes are left alone)."""
    for thread in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(thread.name), cpus)


def wrk_together(urls: list[str], script: Path, seconds: float, connections: int) -> list[WrkResult]:
    """One wrk per URL, all at once (one thread and `connections` connections each)."""
    running = [
        (
            url,
            subprocess.Popen(
                _wrk_argv(url, script, seconds, connections, 1), stdout=subprocess.PIPE, text=True
            ),
        )
        for url in urls
    ]
    results = []
    for url, process in running:
        stdout, _ = process.communicate(timeout=seconds + 60)
        if process.returncode != 0:
            raise RuntimeError(f"wrk against {url} failed with exit code {process.returncode}")
        results.append(_wrk_result(url, stdout))
    return results


# The API's request-duration histogram ------------------------------------------------------------------
_BUCKET = re.compile(
    r"^kschema_api_request_duration_seconds_bucket\{(?P<labels>.*)\}\s+(?P<value>[\d.e+-]+)$", re.MULTILINE
)


def duration_buckets(url: str, route: str) -> dict[float, float]:
    """Cumulative bucket counts of `kschema_api_request_duration_seconds` for GET `route`."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[float, float] = {}
    for match in _BUCKET.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels")))
        if labels.get("route") == route and labels.get("method") == "GET":
            found[float(labels["le"])] = float(match.group("value"))
    return found


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """Prometheus' `histogram_quantile` over the requests between two scrapes: linear within the bucket
    that holds the quantile. Seconds."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower
