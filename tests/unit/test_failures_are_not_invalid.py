"""Failures are not "invalid schema": an infrastructure error (a full temporary directory, a missing
compiler) or a programming error inside parsing passes through as what it is, so the operator retries
the first and the webhook fails closed (500) on the second, instead of refusing a good schema for ever."""

from __future__ import annotations

import errno
import json
import math
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import kopf
import pytest

from kschema.compute import WorkerPool
from kschema.formats import SchemaFormat, parse_schema
from kschema.formats import avro as avro_format
from kschema.formats import jsonschema as json_format
from kschema.operator import OperatorSettings
from kschema.operator.blocked import Blocked
from kschema.operator.context import fail
from kschema.operator.registration import _in_worker


def _disk_full(*args: Any, **kwargs: Any) -> NoReturn:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_temporary_directory_is_an_os_error_not_an_invalid_protobuf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("kschema.formats.protobuf.protoc.tempfile.TemporaryDirectory", _disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        # A text no other test compiles: the compile cache must not answer for it.
        parse_schema(SchemaFormat.PROTOBUF, 'syntax = "proto3"; message DiskFull { string s = 1; }')


def test_a_bug_in_the_avro_parser_surfaces_as_the_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: object, *args: Any) -> NoReturn:
        raise KeyError("a bug")

    monkeypatch.setattr(avro_format._Walker, "walk", broken)
    with pytest.raises(KeyError, match="a bug"):
        parse_schema(SchemaFormat.AVRO, '"string"')


def test_a_bug_in_the_json_schema_parser_surfaces_as_the_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> NoReturn:
        raise TypeError("a bug")

    monkeypatch.setattr(json_format, "_check_references", broken)
    with pytest.raises(TypeError, match="a bug"):
        parse_schema(SchemaFormat.JSON, json.dumps({"type": "string"}))


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    async with WorkerPool(processes=1) as started:
        yield started


async def test_an_os_error_in_a_worker_is_a_temporary_block_that_the_operator_retries(
    pool: WorkerPool,
) -> None:
    with pytest.raises(Blocked) as blocked:
        await _in_worker(pool, "spec.schema", open, "/nonexistent/kschema/schema.proto")
    assert (blocked.value.reason, blocked.value.temporary) == ("TemporaryFailure", True)
    with pytest.raises(kopf.TemporaryError):
        fail(blocked.value, 0, OperatorSettings())


async def test_a_bug_in_a_worker_is_not_a_block(pool: WorkerPool) -> None:
    with pytest.raises(ValueError, match="math domain error"):
        await _in_worker(pool, "spec.schema", math.sqrt, -1)
