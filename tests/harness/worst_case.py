"""The worst inputs for the checkers, shared by the tests and the benchmarks, and a `kschema api` process
over a store that holds them, to measure what the rest of the process does while they are checked."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kschema.compat import CompatibilityLevel
from kschema.devcluster.controlplane import free_port
from kschema.formats import SchemaFormat, parse_schema
from kschema.store import NewVersion, SubjectRecord
from kschema.store.factory import open_store

# The subject the read API holds the wide schema under, and a few ordinary ones to list.
WIDE_SUBJECT = "worst-case-value"
ORDINARY_SUBJECTS = tuple(f"ordinary-{i}-value" for i in range(20))


def json_ref_dag(levels: int, leaf: str = "string") -> str:
    """Each definition has two properties that both `$ref` the previous definition: 2^levels paths
    through a schema of a few KB (the input that froze the read API before checks were bounded)."""
    definitions: dict[str, Any] = {"d0": {"type": leaf}}
    for i in range(1, levels + 1):
        previous = {"$ref": f"#/definitions/d{i - 1}"}
        definitions[f"d{i}"] = {"type": "object", "properties": {"a": previous, "b": dict(previous)}}
    return json.dumps({"definitions": definitions, "$ref": f"#/definitions/d{levels}"})


def avro_record_dag(levels: int, leaf: str = "string") -> str:
    """Record R_i has two fields of type R_{i-1}: one named type reached along 2^levels paths."""
    schema: Any = {"type": "record", "name": "R0", "fields": [{"name": "v", "type": leaf}]}
    for i in range(1, levels + 1):
        schema = {
            "type": "record",
            "name": f"R{i}",
            "fields": [{"name": "a", "type": schema}, {"name": "b", "type": f"R{i - 1}"}],
        }
    return json.dumps(schema)


# Comparing two `wide_any_of` versions costs 2 x branches^2 steps (the properties share their content,
# so they are compared once): at 1,100 branches, 2.42 million, past `LIMITS.check_steps` (2 million) on
# any machine, however fast; on this kind of machine the 5 s deadline stops it first.
REFUSED_BRANCHES = 1100


def wide_any_of(branches: int, shift: int = 0, properties: int = 3) -> str:
    """Properties whose `anyOf` has `branches` distinct subschemas: comparing two versions compares every
    branch with every branch (branches^2 pairs) and then matches them. Polynomial, but at
    `REFUSED_BRANCHES` more work than any check may do: the worst case a budget must refuse."""
    return json.dumps(
        {
            "type": "object",
            "properties": {
                f"p{k}": {"anyOf": [{"type": "string", "maxLength": i + shift} for i in range(branches)]}
                for k in range(properties)
            },
        }
    )


async def _register(url: str, subject: str, fmt: SchemaFormat, text: str) -> None:
    parsed = parse_schema(fmt, text)
    store = await open_store(url)
    try:
        await store.upsert_subject(
            SubjectRecord(subject, "team-a", fmt, CompatibilityLevel.BACKWARD, deleted=False)
        )
        await store.register(
            NewVersion(
                subject=subject,
                version=1,
                namespace="team-a",
                format=fmt,
                schema=text,
                canonical=parsed.canonical,
                fingerprint=parsed.fingerprint,
            )
        )
    finally:
        await store.close()


def populate(url: str, wide_branches: int) -> None:
    """A store with the wide schema (version 1 of `WIDE_SUBJECT`) and a few ordinary subjects."""

    async def fill() -> None:
        await _register(url, WIDE_SUBJECT, SchemaFormat.JSON, wide_any_of(wide_branches))
        for name in ORDINARY_SUBJECTS:
            field = {"name": name.replace("-", "_"), "type": "string"}
            record = json.dumps({"type": "record", "name": "R", "fields": [field]})
            await _register(url, name, SchemaFormat.AVRO, record)

    asyncio.run(fill())


@contextmanager
def kschema_api(store_url: str, log: Path) -> Iterator[str]:
    """`kschema api` as shipped, in its own process; yields its base URL once it is ready."""
    port = free_port()
    env = {
        **os.environ,
        "KSCHEMA_STORE_URL": store_url,
        "KSCHEMA_API_HOST": "127.0.0.1",
        "KSCHEMA_API_PORT": str(port),
    }
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "kschema"), "api"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"kschema api exited with {process.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"kschema api was not ready in 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
