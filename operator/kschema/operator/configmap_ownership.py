"""Which ConfigMaps a Subject's projection may write, and taking over the fields an earlier release wrote
with updates so that server-side apply manages them."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client

from kschema.model import API_VERSION, LABEL_MANAGED_BY, LABEL_SUBJECT, SUBJECT_KIND

MANAGED_BY = "kschema"


def owner_reference(resource_name: str, uid: str) -> dict[str, Any]:
    """The ownerReference to the Subject: its ConfigMap is garbage-collected with it."""
    return {
        "apiVersion": API_VERSION,
        "kind": SUBJECT_KIND,
        "name": resource_name,
        "uid": uid,
        "controller": True,
    }


def owned_by(config_map: client.V1ConfigMap, resource_name: str, uid: str) -> bool:
    """Ours when it points at this Subject, or carries our labels (left by an earlier Subject of the same
    name, e.g. one deleted and re-created by Argo CD, and adopted by replacing the ownerReference)."""
    meta = config_map.metadata
    if any(ref.uid == uid for ref in meta.owner_references or ()):
        return True
    labels = meta.labels or {}
    return bool(labels.get(LABEL_SUBJECT) == resource_name and labels.get(LABEL_MANAGED_BY) == MANAGED_BY)


def managed_fields_upgrade(config_map: client.V1ConfigMap, manager: str) -> list[dict[str, Any]] | None:
    """A JSON patch handing the fields `manager` owns through updates (the create and replace calls of
    earlier releases) to its applies, as client-go's `csaupgrade` does; None when there is nothing to
    hand over. Without it, a key both own would outlive its removal from the applied configuration."""
    meta = config_map.metadata
    entries = meta.managed_fields or []
    if any(e.manager == manager and e.operation == "Apply" for e in entries):
        return None
    for index, entry in enumerate(entries):
        if entry.manager == manager and entry.operation == "Update" and not entry.subresource:
            return [
                {"op": "test", "path": "/metadata/resourceVersion", "value": meta.resource_version},
                {"op": "replace", "path": f"/metadata/managedFields/{index}/operation", "value": "Apply"},
            ]
    return None
