"""The start-up warning about the temporary folder (the image needs a writable /tmp)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kschema.runtime.tempdir import temp_dir_problem, warn_if_temp_dir_unexpected


@pytest.fixture(autouse=True)
def _recompute_tempdir() -> Iterator[None]:
    yield
    tempfile.tempdir = None  # the check caches the patched TMPDIR's folder; forget it for later tests


def test_a_writable_expected_folder_is_no_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))

    assert temp_dir_problem(str(tmp_path)) is None


def test_a_different_temp_dir_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("TMPDIR", str(other))

    problem = temp_dir_problem(str(tmp_path))

    assert problem is not None
    assert str(other) in problem


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_an_unwritable_expected_folder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    monkeypatch.setenv("TMPDIR", str(locked))

    problem = temp_dir_problem(str(locked))

    assert problem is not None
    assert "not writable" in problem


def test_the_warning_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv("TMPDIR", str(other))

    with caplog.at_level(logging.WARNING, logger="kschema.runtime.tempdir"):
        warn_if_temp_dir_unexpected(str(tmp_path))

    assert "--tmpfs" in caplog.text
    assert str(other) in caplog.text
