"""kubectl against the test node, with the waits the node tests use (on conditions, never on sleeps)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

from kschema.devcluster.node import Node

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.5) -> T:
    """Polls `probe` until it returns something other than None/False, or fails naming `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except AssertionError as exc:
            last = exc
        else:
            if result is not None and result is not False:
                return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last}")


class Kube:
    def __init__(self, node: Node) -> None:
        self.node = node

    def run(
        self, *args: str, input: str | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return self.node.kubectl(*args, input=input, check=False, timeout=timeout)

    def __call__(self, *args: str, input: str | None = None, timeout: float = 180) -> str:
        done = self.run(*args, input=input, timeout=timeout)
        assert done.returncode == 0, f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def apply(self, *documents: dict[str, Any], namespace: str | None = None) -> str:
        args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
        return self(*args, input=yaml.safe_dump_all(documents))

    def wait_pod_ready(
        self, namespace: str, selector: str, *, count: int = 1, timeout: float = 240
    ) -> list[str]:
        def ready() -> list[str] | None:
            pods = self.json("-n", namespace, "get", "pods", "-l", selector)["items"]
            names = [
                p["metadata"]["name"]
                for p in pods
                if p["metadata"].get("deletionTimestamp") is None
                and any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in p.get("status", {}).get("conditions", [])
                )
            ]
            return names if len(names) >= count else None

        return eventually(ready, timeout=timeout, what=f"{count} Ready pod(s) {selector} in {namespace}")

    def all_ready(self, namespace: str, selector: str, *, timeout: float = 240) -> list[str]:
        """Waits until every running pod the selector matches is Ready (a finished test-hook pod aside)."""

        def ready() -> list[str] | None:
            pods = [
                p
                for p in self.json("-n", namespace, "get", "pods", "-l", selector)["items"]
                if p["metadata"].get("deletionTimestamp") is None
                and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            ]
            unready = [
                p["metadata"]["name"]
                for p in pods
                if not any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in p.get("status", {}).get("conditions", [])
                )
            ]
            return [p["metadata"]["name"] for p in pods] if pods and not unready else None

        return eventually(ready, timeout=timeout, what=f"every pod {selector} in {namespace} Ready")

    def exec(
        self, namespace: str, pod: str, *command: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self.run("-n", namespace, "exec", pod, "--", *command, timeout=timeout)
