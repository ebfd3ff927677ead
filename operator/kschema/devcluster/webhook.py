"""The reference ValidatingWebhookConfiguration (webhook/ at the repository root), pointed at a webhook
served on this machine: the API server of the local control plane calls it by URL instead of through a
Service."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

REFERENCE = Path(__file__).resolve().parents[3] / "webhook" / "validatingwebhookconfiguration.yaml"


def local_webhook_configuration(base_url: str, ca_pem: bytes, name: str = "kschema-local") -> dict[str, Any]:
    """The reference configuration with each webhook's `clientConfig` replaced by `base_url` + its path
    and `ca_pem` as the CA bundle. The cert-manager annotation goes: there is no injector here."""
    config: dict[str, Any] = yaml.safe_load(REFERENCE.read_text())
    config["metadata"] = {"name": name, "labels": config["metadata"].get("labels", {})}
    for hook in config["webhooks"]:
        path = hook["clientConfig"]["service"]["path"]
        hook["clientConfig"] = {"url": base_url + path, "caBundle": base64.b64encode(ca_pem).decode()}
    return config
