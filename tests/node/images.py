"""The images the node tests run, built once per session by a dockerd started for the build."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kschema.devcluster import image
from tests.node import postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
KSCHEMA = "kschema:dev"
# The same build with one more label: a new image ID, as a rebuilt release would have, for `helm upgrade`.
KSCHEMA_REBUILT = "kschema:dev-rebuilt"
CLIENT = "kschema.local/test-client:1"
POSTGRES = postgres.IMAGE


@dataclass(frozen=True)
class Images:
    kschema: Path  # both kschema tags
    client: Path
    postgres: Path
    seconds: float

    def archives(self) -> tuple[Path, ...]:
        return (self.kschema, self.client, self.postgres)


def build_images() -> Images:
    started = time.monotonic()
    with image.docker() as daemon, tempfile.TemporaryDirectory(prefix="kschema-client-") as context:
        image.build(daemon, KSCHEMA)
        # A new image ID on top of the same layers (a label), in seconds.
        rebuilt = Path(context) / "rebuilt"
        rebuilt.mkdir()
        (rebuilt / "Dockerfile").write_text(f"FROM {KSCHEMA}\nLABEL io.kschema.build=rebuilt\n")
        daemon.docker("build", "-t", KSCHEMA_REBUILT, str(rebuilt))
        shutil.copy(REPO_ROOT / "constraints.txt", context)
        shutil.copy(Path(__file__).parent / "client" / "Dockerfile", context)
        image.build(daemon, CLIENT, context=Path(context))
        image.build(daemon, POSTGRES, context=Path(__file__).parent / "postgres")
        kschema = image.save(daemon, KSCHEMA, KSCHEMA_REBUILT)
        client = image.save(daemon, CLIENT)
        pg = image.save(daemon, POSTGRES)
    return Images(kschema=kschema, client=client, postgres=pg, seconds=time.monotonic() - started)


def main() -> int:
    """`make node-images`: built ahead of the node tests; a cold set-up overlaps this with its Go builds."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    built = build_images()
    for archive in built.archives():
        sys.stdout.write(f"node-images: {archive}\n")
    sys.stdout.write(f"node-images: built in {built.seconds:.0f}s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
