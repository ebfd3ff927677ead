"""Compatibility checks per second (a 50-field record against one version and against a 100-version
history, transitively), per format. (Payload validation against the raw library calls is bench_validate's.)

The checks run on parsed schemas with nothing remembered between calls (no verdict cache: that is the
admission webhook's, measured by bench_webhook), so a rate is the checker's own speed. The target line
compares JSON Schema's rate with Avro's on the equivalent record, measured in the same run."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from kschema.compat import CompatibilityLevel, VersionedSchema, check_compatibility
from kschema.formats import SchemaFormat, parse_schema

FIELDS = 50
HISTORY = 100
# Each measurement runs for at least this long; short, because the machine is shared.
MIN_SECONDS = 0.5
# JSON Schema checks may cost at most this many Avro checks of the equivalent record.
TARGET_RATIO = 2.0
ROUNDS = 7
ROUND_SECONDS = 0.2

_MODULES = {SchemaFormat.AVRO: "avro", SchemaFormat.JSON: "jsonschema", SchemaFormat.PROTOBUF: "protobuf"}


def _rate(
    fn: Callable[[], object], seconds: float = MIN_SECONDS, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Calls per second of `fn`, timed by `clock` over batches until `seconds` have passed."""
    fn()  # warm caches and lazy imports outside the timed part
    calls, batch = 0, 1
    started = clock()
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        elapsed = clock() - started
        if elapsed >= seconds:
            return calls / elapsed
        batch *= 2


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _avro(extra: int | None) -> str:
    fields: list[dict[str, Any]] = [{"name": f"f{i}", "type": "string"} for i in range(FIELDS)]
    if extra is not None:
        fields.append({"name": f"x{extra}", "type": ["null", "long"], "default": None})
    return json.dumps({"type": "record", "name": "Order", "namespace": "com.acme", "fields": fields})


def _json(extra: int | None) -> str:
    properties: dict[str, Any] = {f"f{i}": {"type": "string"} for i in range(FIELDS)}
    if extra is not None:
        properties[f"x{extra}"] = {"type": "integer"}
    return json.dumps(
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": properties}
    )


def _proto(extra: int | None) -> str:
    lines = [f"  string f{i} = {i + 1};" for i in range(FIELDS)]
    if extra is not None:
        lines.append(f"  int64 x{extra} = {FIELDS + 1 + extra};")
    return 'syntax = "proto3";\npackage acme;\n\nmessage Order {\n' + "\n".join(lines) + "\n}\n"


_TEXT: dict[SchemaFormat, Callable[[int | None], str]] = {
    SchemaFormat.AVRO: _avro,
    SchemaFormat.JSON: _json,
    SchemaFormat.PROTOBUF: _proto,
}


def _missing_module(fmt: SchemaFormat, packages: tuple[str, ...]) -> str | None:
    for package in packages:
        name = f"{package}.{_MODULES[fmt]}"
        if importlib.util.find_spec(name) is None:
            return name
    return None


def _compat(fmt: SchemaFormat) -> float:
    """Prints the rates of `fmt`; returns the single-pair rate."""
    label = fmt.value.lower()
    new = VersionedSchema(HISTORY + 1, parse_schema(fmt, _TEXT[fmt](None)))
    history = [VersionedSchema(v, parse_schema(fmt, _TEXT[fmt](v))) for v in range(1, HISTORY + 1)]
    single = check_compatibility(new, history[-1:], CompatibilityLevel.BACKWARD)
    full = check_compatibility(new, history, CompatibilityLevel.BACKWARD_TRANSITIVE)
    single_rate = _rate(lambda: check_compatibility(new, history[-1:], CompatibilityLevel.BACKWARD))
    _out(f"compat {label} {FIELDS} fields x1: {single_rate:.0f} checks/s (compatible={single.compatible})")
    rate = _rate(lambda: check_compatibility(new, history, CompatibilityLevel.BACKWARD_TRANSITIVE))
    _out(
        f"compat {label} {FIELDS} fields x{HISTORY} transitive: {rate:.1f} checks/s "
        f"({rate * HISTORY:.0f} version pairs/s, compatible={full.compatible})"
    )
    return single_rate


def _interleaved(first: SchemaFormat, second: SchemaFormat) -> tuple[float, float]:
    """Single-pair check rates of two formats per second of this process's CPU time, measured in
    alternating rounds, the best round of each: on a shared machine, other processes' load then neither
    counts nor favours one format."""
    checks = []
    for fmt in (first, second):
        new = VersionedSchema(2, parse_schema(fmt, _TEXT[fmt](None)))
        old = [VersionedSchema(1, parse_schema(fmt, _TEXT[fmt](1)))]
        checks.append(lambda new=new, old=old: check_compatibility(new, old, CompatibilityLevel.BACKWARD))
    best = [0.0, 0.0]
    for _ in range(ROUNDS):
        for index, check in enumerate(checks):
            best[index] = max(best[index], _rate(check, ROUND_SECONDS, time.process_time))
    return best[0], best[1]


def run() -> None:
    started = time.perf_counter()
    rates: dict[SchemaFormat, float] = {}
    for fmt in (SchemaFormat.AVRO, SchemaFormat.JSON, SchemaFormat.PROTOBUF):
        label = fmt.value.lower()
        missing = _missing_module(fmt, ("kschema.formats", "kschema.compat"))
        if missing is None:
            rates[fmt] = _compat(fmt)
        else:
            _out(f"compat {label}: unavailable ({missing} is not present)")

    if SchemaFormat.AVRO in rates and SchemaFormat.JSON in rates:
        avro, json_schema = _interleaved(SchemaFormat.AVRO, SchemaFormat.JSON)
        ratio = avro / json_schema
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        _out(
            f"target compat json within {TARGET_RATIO:g}x of avro ({FIELDS} fields x1, same run, "
            f"CPU time, best of {ROUNDS} interleaved rounds): avro {avro:.0f}/s, json {json_schema:.0f}/s, "
            f"ratio {ratio:.2f} ({verdict})"
        )
    _out(f"bench_compat took {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    run()
