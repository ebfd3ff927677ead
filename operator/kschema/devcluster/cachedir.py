"""Where the harness keeps what it builds or downloads once (binaries, images, Apicurio, benchmark seeds):
outside the repository, in the same folder the dev/*/build.sh scripts use."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`KSCHEMA_CACHE_DIR`, else `$XDG_CACHE_HOME/kschema`, else `~/.cache/kschema` (as in dev/*/build.sh)."""
    explicit = os.environ.get("KSCHEMA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kschema"
