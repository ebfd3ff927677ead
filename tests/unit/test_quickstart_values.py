"""The README's kind quickstart, `make demo` and the chart tests on the local node install the same chart
with the same values: one file, `charts/quickstart-values.yaml`, that all three name and none adds to with
`--set`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VALUES = "charts/quickstart-values.yaml"


def _quickstart_helm_install() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Quickstart on kind", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)[:1]
    command = block.replace("\\\n", " ")
    [line] = [ln for ln in command.splitlines() if ln.startswith("helm install ")]
    return shlex.split(line)


def test_the_quickstart_installs_the_chart_with_the_values_file_only() -> None:
    argv = _quickstart_helm_install()

    assert argv[:4] == ["helm", "install", "kschema", "charts/kschema"]
    assert argv[argv.index("--values") + 1] == VALUES
    assert not [a for a in argv if a.startswith("--set")]
    assert argv.count("--values") == 1


def test_the_values_file_names_the_image_the_local_builds_make() -> None:
    values = yaml.safe_load((REPO_ROOT / VALUES).read_text())

    assert values == {"image": {"repository": "kschema", "tag": "dev"}}
    # `docker build -t kschema:dev` in the quickstart; the node tests and the demo build the same tag.
    assert "docker build -t kschema:dev ." in (REPO_ROOT / "README.md").read_text()
    assert 'KSCHEMA = "kschema:dev"' in (REPO_ROOT / "tests" / "node" / "images.py").read_text()


def test_the_demo_and_the_node_tests_install_with_the_same_file() -> None:
    demo = (REPO_ROOT / "dev" / "demo_node.py").read_text()
    release = (REPO_ROOT / "tests" / "node" / "release.py").read_text()

    assert 'VALUES = REPO / "charts" / "quickstart-values.yaml"' in demo
    assert '"--values", str(VALUES)' in demo
    assert 'QUICKSTART_VALUES = REPO_ROOT / "charts" / "quickstart-values.yaml"' in release
    assert '"--values", str(QUICKSTART_VALUES)' in release
    assert "--set" not in demo
    assert "--set" not in release
