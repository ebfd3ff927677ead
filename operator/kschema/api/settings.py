"""Settings of the read API, read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kschema.api.auth import AuthSettings
from kschema.compat import CompatibilityLevel


@dataclass(frozen=True, slots=True)
class ApiSettings:
    host: str = "0.0.0.0"  # a registry service listens on all of the pod's interfaces
    port: int = 8081  # Confluent Schema Registry's port, so client configs carry over
    # The level reported by `GET /config`; subjects carry their own level from their Subject resource.
    global_compatibility: CompatibilityLevel = CompatibilityLevel.BACKWARD
    # How long one wait on the store's change feed may block before polling again.
    feed_wait_seconds: float = 1.0
    # Changes read per call; a backlog at least this long is caught up with a fresh snapshot instead.
    feed_batch: int = 1000
    # Pause after the store failed before trying again (the index keeps serving what it has).
    feed_retry_seconds: float = 1.0
    # Largest request body accepted (Confluent caps schemas at a few MiB as well).
    max_body_bytes: int = 16 * 1024 * 1024
    # Longest request line (method, path with query, version) and longest header line. Longer ones are
    # refused with 400 in Confluent's error shape before any handler runs; subject names live in the
    # path, and the store caps them well below this.
    max_request_line_bytes: int = 8190
    max_header_bytes: int = 8190
    # Bearer-token authentication (off by default) and the kubeconfig its TokenReview client uses
    # (None: the in-cluster ServiceAccount, then ~/.kube/config).
    auth: AuthSettings = field(default_factory=AuthSettings)
    kubeconfig: Path | None = None

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, got {self.port}")
        if self.feed_wait_seconds <= 0:
            raise ValueError(f"feed_wait_seconds must be positive, got {self.feed_wait_seconds}")
        if self.feed_batch < 1:
            raise ValueError(f"feed_batch must be at least 1, got {self.feed_batch}")
        for name in ("max_request_line_bytes", "max_header_bytes"):
            if getattr(self, name) < 1024:
                raise ValueError(f"{name} must be at least 1024, got {getattr(self, name)}")
        if self.feed_retry_seconds <= 0:
            raise ValueError(f"feed_retry_seconds must be positive, got {self.feed_retry_seconds}")
