"""A real third-party registry for the import tests: Apicurio Registry 3.3.3 and its Confluent-compatible
API (`/apis/ccompat/v7`), in-memory storage, on free loopback ports.

`dev/apicurio/setup.sh` (run by `make setup`) downloads it from Maven Central into
`~/.cache/kschema/apicurio-3.3.3`; the fixture runs that script itself when the cache is empty. Apicurio 3.x
needs Java 21 or newer: `KSCHEMA_JAVA`, the Temurin JDK beside the system Java, or any newer JDK under
/usr/lib/jvm.

Fixture: `apicurio` (a fresh, empty registry per test module is cheap: about 5 s to start).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from kschema.devcluster.cachedir import cache_dir
from kschema.devcluster.controlplane import free_port

VERSION = "3.3.3"
REPO_ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO_ROOT / "dev" / "apicurio" / "setup.sh"
CACHE = cache_dir()
START_TIMEOUT_SECONDS = 300.0  # about 5 s on an idle machine; minutes when it is shared
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def apicurio_home() -> Path:
    home = CACHE / f"apicurio-{VERSION}"
    if not (home / "quarkus-run.jar").is_file():
        subprocess.run(["bash", str(SETUP_SCRIPT)], check=True, capture_output=True, timeout=900)
    return home


def _java_major(java: Path) -> int:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return 0
    found = re.search(r'version "(\d+)', out.stderr + out.stdout)
    return int(found.group(1)) if found else 0


def java_21_or_newer() -> Path:
    candidates = [Path(p) for p in (os.environ.get("KSCHEMA_JAVA"),) if p]
    candidates.append(Path("/usr/lib/jvm/temurin-25-jdk-amd64/bin/java"))
    candidates += sorted(Path("/usr/lib/jvm").glob("*/bin/java"), reverse=True)
    for java in candidates:
        if java.is_file() and _java_major(java) >= 21:
            return java
    raise RuntimeError(
        "Apicurio Registry 3.x needs Java 21 or newer; none found (set KSCHEMA_JAVA to a java binary)"
    )


@dataclass
class Apicurio:
    """A running Apicurio Registry. `url` is the root of its Confluent-compatible API."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": CONTENT_TYPE}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def register(self, subject: str, schema: str, schema_type: str = "AVRO", references: Any = ()) -> int:
        body: dict[str, Any] = {"schema": schema, "schemaType": schema_type}
        if references:
            body["references"] = list(references)
        status, answer = self.request("POST", f"/subjects/{quote(subject, safe='')}/versions", body)
        assert status == 200, (status, answer)
        return int(answer["id"])


def start_apicurio(work: Path) -> Apicurio:
    home = apicurio_home()
    java = java_21_or_newer()
    port, management = free_port(), free_port()
    log = work / "apicurio.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(java),
                "-Xmx512m",
                "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC",
                "-Dquarkus.http.host=127.0.0.1",
                f"-Dquarkus.http.port={port}",
                "-Dquarkus.management.host=127.0.0.1",
                f"-Dquarkus.management.port={management}",
                "-Dquarkus.otel.sdk.disabled=true",
                "-Dquarkus.http.access-log.enabled=false",
                '-Dquarkus.log.category."io.apicurio.registry.logging.audit".level=WARN',
                "-jar",
                "quarkus-run.jar",
            ],
            cwd=home,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    registry = Apicurio(f"http://127.0.0.1:{port}/apis/ccompat/v7", process, log)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Apicurio exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(registry.url + "/subjects", timeout=2) as response:
                if response.status == 200:
                    return registry
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    stop_apicurio(registry)
    raise RuntimeError(f"Apicurio did not answer in {START_TIMEOUT_SECONDS:g} s:\n{log.read_text()[-3000:]}")


def stop_apicurio(registry: Apicurio) -> None:
    if registry.process.poll() is None:
        registry.process.send_signal(signal.SIGTERM)
        try:
            registry.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            registry.process.kill()
            registry.process.wait()


@pytest.fixture(scope="module")
def apicurio() -> Iterator[Apicurio]:
    with tempfile.TemporaryDirectory(prefix="kschema-apicurio-") as work:
        registry = start_apicurio(Path(work))
        try:
            yield registry
        finally:
            stop_apicurio(registry)
