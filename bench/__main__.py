"""Runs every benchmark module in this directory (`bench_*.py`), each through its `run() -> None`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main() -> int:
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    selected = [
        n for n in names if not sys.argv[1:] or n in sys.argv[1:] or n[len("bench_") :] in sys.argv[1:]
    ]
    for name in selected:
        module = importlib.import_module(f"bench.{name}")
        sys.stdout.write(f"# {name}\n")
        sys.stdout.flush()
        module.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
