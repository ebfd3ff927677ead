"""`kschema compat` and `kschema check` import only what they need: kopf, aiohttp and the Kubernetes
client cost about a second before any work, and only the long-running commands use them."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("kopf", "aiohttp", "kubernetes_asyncio", "kschema.operator", "kschema.api", "kschema.webhook")


def _imported_after(argv: list[str]) -> set[str]:
    code = (
        "import sys\n"
        "from kschema.cli.main import build_parser\n"
        f"build_parser({argv!r}).parse_args({argv!r})\n"
        "print('\\n'.join(sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(done.stdout.split())


@pytest.mark.parametrize(
    "argv", [["compat", "new.avsc", "old.avsc"], ["check", "manifests/"]], ids=["compat", "check"]
)
def test_a_one_shot_command_imports_no_server_framework(argv: list[str]) -> None:
    imported = _imported_after(argv)
    assert not [name for name in imported if name.split(".")[0] in HEAVY or name.startswith(HEAVY)]


def test_the_server_commands_still_get_their_options() -> None:
    imported = _imported_after(["api", "--api-port", "8081"])
    assert "kschema.runtime.config" in imported


def test_bare_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kschema.cli.main", "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    for command in ("run", "operator", "webhook", "api", "compat", "check", "dev"):
        assert command in done.stdout
