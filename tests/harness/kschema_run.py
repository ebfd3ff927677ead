"""Starts `kschema run` (operator, webhook and read API in one process, SQLite store) as the product's own
CLI, with a webhook certificate and free loopback ports, for the e2e modules that need the whole of it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kschema.devcluster.controlplane import free_port
from kschema.devcluster.pki import CertificateAuthority

KSCHEMA = str(Path(sys.executable).parent / "kschema")


@dataclass(frozen=True)
class Started:
    process: subprocess.Popen[bytes]
    api: str  # the read API's base URL
    webhook: str  # the webhook's base URL (HTTPS)
    health: str  # kopf's liveness endpoint's base URL
    ca_pem: bytes  # the CA that signed the webhook's certificate
    log: Path  # stdout and stderr of the process


def start_kschema_run(
    kubeconfig: Path, work: Path, *, ca_name: str, extra_env: Mapping[str, str] | None = None
) -> Started:
    """`kschema run` against `kubeconfig`, its store, certificates and log in `work`. The caller stops it."""
    ca = CertificateAuthority(ca_name)
    ca.issue("kschema-webhook", hosts=("127.0.0.1",)).write(work / "tls.crt", work / "tls.key")
    api_port, webhook_port, health_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "KSCHEMA_STORE_URL": f"sqlite:///{work / 'registry.db'}",
        "KSCHEMA_API_HOST": "127.0.0.1",
        "KSCHEMA_API_PORT": str(api_port),
        "KSCHEMA_WEBHOOK_HOST": "127.0.0.1",
        "KSCHEMA_WEBHOOK_PORT": str(webhook_port),
        "KSCHEMA_WEBHOOK_CERT_DIR": str(work),
        "KSCHEMA_HEALTH_PORT": str(health_port),
        "KSCHEMA_PEERING": "",
        **(extra_env or {}),
    }
    log = work / "kschema.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [KSCHEMA, "run"], env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    return Started(
        process,
        f"http://127.0.0.1:{api_port}",
        f"https://127.0.0.1:{webhook_port}",
        f"http://127.0.0.1:{health_port}",
        ca.cert_pem,
        log,
    )


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Waits until `url` answers 200; fails with the log's tail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"kschema exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} was not ready in {timeout}s:\n{log.read_text()[-3000:]}")
