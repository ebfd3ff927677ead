"""A start-up check of the temporary folder. The image expects a writable /tmp (an emptyDir or tmpfs over a
read-only root); without one, Python's tempfile falls back to the working directory, which in the image is
the data volume, and the kubeconfig's key copies and protoc's work folders would land there."""

from __future__ import annotations

import logging
import os
import tempfile

logger = logging.getLogger(__name__)

EXPECTED = "/tmp"


def temp_dir_problem(expected: str = EXPECTED) -> str | None:
    """Why the temporary folder is not the writable `expected` folder, or None when it is."""
    tempfile.tempdir = None  # recompute: TMPDIR or the mounts may differ from when it was first asked
    chosen = tempfile.gettempdir()
    if os.path.realpath(chosen) != os.path.realpath(expected):
        if not os.access(expected, os.W_OK):
            return f"{expected} is not writable, so temporary files go to {chosen}"
        return f"temporary files go to {chosen}, not {expected} (TMPDIR={os.environ.get('TMPDIR', '')!r})"
    if not os.access(chosen, os.W_OK):
        return f"{chosen} is not writable"
    return None


def warn_if_temp_dir_unexpected(expected: str = EXPECTED) -> None:
    problem = temp_dir_problem(expected)
    if problem:
        logger.warning(
            "Temporary folder: %s; mount a writable %s (an emptyDir, or `--tmpfs %s` with docker)",
            problem,
            expected,
            expected,
        )
