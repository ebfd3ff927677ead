"""Helpers for data-contract tests: the example manifests, and Confluent's rule executors registered in
the client's global rule registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.harness.cluster import REPO_ROOT

CONTRACT_EXAMPLE = REPO_ROOT / "examples" / "contracts" / "llm-inference.yaml"
SUBJECT = "llm-inference-value"


def example_documents(path: Path = CONTRACT_EXAMPLE) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def register_executors() -> None:
    """CEL, CEL_FIELD and JSONata, as an application using `confluent-kafka[rules]` registers them."""
    from confluent_kafka.schema_registry.rules.cel.cel_executor import CelExecutor
    from confluent_kafka.schema_registry.rules.cel.cel_field_executor import CelFieldExecutor
    from confluent_kafka.schema_registry.rules.jsonata.jsonata_executor import JsonataExecutor

    CelExecutor.register()  # type: ignore[no-untyped-call]
    CelFieldExecutor.register()  # type: ignore[no-untyped-call]
    JsonataExecutor.register()  # type: ignore[no-untyped-call]


def inference(**fields: Any) -> dict[str, Any]:
    record = {"request_id": "r-1", "model": "llama-3", "tokens": 42, "user_email": "ada@example.com"}
    record.update(fields)
    return record
