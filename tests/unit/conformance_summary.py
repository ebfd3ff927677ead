"""What the conformance tests share: loading a corpus of tests/data/conformance, and counting agreement with
the records' sources per group (source, flag) so a test can assert the measured targets."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kschema.compat.cases import CaseVerdict, expected_verdict

CONFORMANCE_DATA = Path(__file__).parents[1] / "data" / "conformance"


def load_records(corpus: str) -> list[dict[str, Any]]:
    """The records of `tests/data/conformance/<corpus>.jsonl`, one JSON object a line."""
    lines = (CONFORMANCE_DATA / f"{corpus}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def unparseable(record: dict[str, Any]) -> bool:
    return any(flag.startswith("unparseable") for flag in record["flags"])


def agrees(record: dict[str, Any], verdict: CaseVerdict) -> bool:
    """Whether kschema's verdict is the source's: no verdict for a schema the source could not parse."""
    if unparseable(record):
        return verdict.compatible is None
    return verdict.compatible is expected_verdict(record)


def source_and_flag_groups(record: dict[str, Any]) -> list[str]:
    """`source:<source>` and one `flag:<flag>` per flag (`flag:unflagged` for a record without flags)."""
    return [f"source:{record['source']}"] + [f"flag:{f}" for f in record["flags"] or ["unflagged"]]


@dataclass
class Agreement:
    """How many records of each group agree with their source, out of how many."""

    agreed: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)

    def count(self, groups: Iterable[str], in_agreement: bool) -> None:
        for group in groups:
            self.total[group] += 1
            self.agreed[group] += in_agreement

    def report(self) -> dict[str, str]:
        """`agreed/total` per group, for assertion messages."""
        return {group: f"{self.agreed[group]}/{self.total[group]}" for group in sorted(self.total)}
