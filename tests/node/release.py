"""A Helm release of the chart on the test node."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.node.images import KSCHEMA
from tests.node.kube import Kube

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "kschema"
# The README quickstart's values file, given to every install and upgrade first; a test's values go on top.
QUICKSTART_VALUES = REPO_ROOT / "charts" / "quickstart-values.yaml"
_QUICKSTART = yaml.safe_load(QUICKSTART_VALUES.read_text())
assert f"{_QUICKSTART['image']['repository']}:{_QUICKSTART['image']['tag']}" == KSCHEMA, (
    "the node tests build and load the image the quickstart values name"
)


class Release:
    def __init__(self, helm: Path, kube: Kube, name: str, namespace: str, work: Path) -> None:
        self.binary, self.kube, self.name, self.namespace, self._work = helm, kube, name, namespace, work
        self._count = 0

    def helm(
        self, *args: str, values: Mapping[str, Any] | None = None, timeout: float = 400
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), *args, "--namespace", self.namespace]
        if values is not None:
            self._count += 1
            path = self._work / f"{self.name}-values-{self._count}.yaml"
            path.write_text(yaml.safe_dump(dict(values)))
            argv += ["--values", str(QUICKSTART_VALUES), "--values", str(path)]
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=timeout, env=self.kube.node.env()
        )

    def install(self, values: Mapping[str, Any], *, upgrade: bool = False) -> str:
        action = ["upgrade", "--install"] if upgrade else ["install", "--create-namespace"]
        done = self.helm(*action, self.name, str(CHART), "--wait", "--timeout=300s", values=values)
        assert done.returncode == 0, f"helm {action[0]} failed:\n{done.stderr}\n{self.diagnose()}"
        return done.stdout

    def diagnose(self) -> str:
        pods = self.kube.run("-n", self.namespace, "get", "pods,pvc,events", "-o", "wide").stdout
        logs = self.kube.run("-n", self.namespace, "logs", "-l", "app.kubernetes.io/name=kschema",
                             "--tail=40",
                             "--all-containers", "--prefix").stdout  # fmt: skip
        return f"{pods}\n{logs}"

    @property
    def api_url(self) -> str:
        return f"http://{self.name}.{self.namespace}.svc:8081"
