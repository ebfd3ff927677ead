"""Start-up time of the one-shot CLI commands (`kschema compat`, `kschema check`), median wall time of
fresh processes, next to the baseline measured in the same run: `kschema api --help`, which imports what
the long-running commands need (kopf, aiohttp, the operator) and what every command imported before
only the chosen subcommand's module was loaded."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5
EXAMPLES = Path(__file__).parents[1] / "examples" / "avro"


def _median_seconds(argv: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "kschema.cli.main", *argv], capture_output=True, timeout=300, check=False
        )
        times.append(time.perf_counter() - started)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"kschema {' '.join(argv)} failed: {done.stderr.decode()[-300:]}")
    return statistics.median(times)


def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "v1.avsc", Path(tmp) / "v2.avsc"
        fields = [{"name": "id", "type": "string"}]
        old.write_text(json.dumps({"type": "record", "name": "O", "fields": fields}))
        fields.append({"name": "n", "type": "string", "default": ""})
        new.write_text(json.dumps({"type": "record", "name": "O", "fields": fields}))
        baseline = _median_seconds(["api", "--help"])
        rows = [
            ("compat --help", _median_seconds(["compat", "--help"])),
            ("compat NEW OLD (Avro)", _median_seconds(["compat", str(new), str(old)])),
            ("check examples/avro", _median_seconds(["check", str(EXAMPLES)])),
        ]
    sys.stdout.write(f"baseline  kschema api --help (server imports): {baseline:.2f} s\n")
    for label, seconds in rows:
        sys.stdout.write(f"kschema {label:28s} {seconds:.2f} s  ({seconds / baseline:.0%} of baseline)\n")
    sys.stdout.flush()
