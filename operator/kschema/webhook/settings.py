"""Settings of the admission webhook, read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kschema.compat import CompatibilityLevel

# One path per kind; the reference ValidatingWebhookConfiguration (webhook/ at the repository root) and
# the chart use exactly these.
SUBJECTS_PATH = "/validate/subjects"
SCHEMAS_PATH = "/validate/schemas"


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Where and how the webhook serves.

    `cert_file`/`key_file` are PEM files (a cert-manager Secret mounted as a volume); they are re-read every
    `tls_reload_interval` seconds and new connections use the new pair, so rotation needs no restart.
    `kubeconfig` None means the in-cluster service account, falling back to the default kubeconfig.
    `cache_sync_timeout` bounds how long a request waits for the first list of Subjects and Schemas;
    `store_timeout` bounds the registry store reads of one request. Both must stay well below the
    configuration's `timeoutSeconds` so the API server gets a clear refusal rather than a timeout.
    """

    cert_file: Path
    key_file: Path
    host: str = "0.0.0.0"
    port: int = 9443
    tls_reload_interval: float = 10.0
    kubeconfig: Path | None = None
    cache_sync_timeout: float = 5.0
    store_timeout: float = 2.0
    watch_timeout_seconds: int = 300
    parse_cache_size: int = 4096
    # The level of Subjects without spec.compatibility (`--default-compatibility`).
    default_compatibility: CompatibilityLevel = CompatibilityLevel.BACKWARD
