"""kopf's diff base kept as a digest instead of a copy of the object.

kopf remembers the last handled state of each object to tell an update from a no-op. Its annotation
storage keeps a JSON copy of the whole spec in an annotation: a Schema's text then counts twice against
the object's size and once against the 256 KiB limit of all annotations together, so a schema of a few
hundred KB is stored but never gets its status, and cannot be deleted. Our handlers are level-based: they
need to know *that* the object changed, never *what* changed. So the diff base here is a SHA-256 digest of
what kopf would have stored; a different digest is an update, the same digest a no-op.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import kopf

DIGEST_KEY = "digest"
# What kopf's own essence leaves out: the identity and system stanzas, and kubectl's copy of the object.
_NOT_ESSENCE = frozenset({"apiVersion", "kind", "metadata", "status"})
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class DigestDiffBaseStorage(kopf.DiffBaseStorage):
    """Stores `{prefix}/{key}: <sha256>`; removes the annotation of kopf's annotation storage
    (`legacy_key`) that earlier releases wrote, the first time it handles the object.

    Annotations under `prefix` are kopf's bookkeeping and never part of the essence, except the ones in
    `watched_annotations`, which are declared by users (a Subject's transfer annotation) and must trigger a
    reconcile when they change."""

    def __init__(
        self, *, prefix: str, key: str, legacy_key: str, watched_annotations: Iterable[str] = ()
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.annotation = f"{prefix}/{key}"
        self.legacy_annotation = f"{prefix}/{legacy_key}"
        self.watched_annotations = frozenset(watched_annotations)

    def _normalised(self, essence: Any, annotations_of: Any) -> dict[str, Any]:
        """The essence without our bookkeeping annotations, with the watched ones taken from
        `annotations_of` (the object's annotations)."""
        found: dict[str, Any] = json.loads(json.dumps(essence))
        metadata = found.setdefault("metadata", {})
        annotations = {
            k: v
            for k, v in (metadata.get("annotations") or {}).items()
            if not k.startswith(f"{self.prefix}/")
        }
        for key in self.watched_annotations:
            if key in annotations_of:
                annotations[key] = annotations_of[key]
        if annotations:
            metadata["annotations"] = annotations
        else:
            metadata.pop("annotations", None)
        if not metadata:
            found.pop("metadata")
        return found

    @staticmethod
    def _digest(essence: dict[str, Any]) -> str:
        encoded = json.dumps(essence, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> Any:
        if extra_fields or self.ignored_fields:
            essence = super().build(body=body, extra_fields=extra_fields)
            return {DIGEST_KEY: self._digest(self._normalised(essence, body.metadata.annotations))}
        return {DIGEST_KEY: self._digest(self._essence(body))}

    def _essence(self, body: kopf.Body) -> dict[str, Any]:
        """The same essence as kopf's `build` followed by `_normalised`, without their copies: kopf deep-
        copies the whole object (managed fields and status included) and `_normalised` copies it again,
        on every watch event of every object; a digest needs only to read it. Nothing here is changed."""
        raw = dict(body)
        essence = {k: v for k, v in raw.items() if k not in _NOT_ESSENCE}
        meta = raw.get("metadata") or {}
        metadata: dict[str, Any] = {}
        labels = meta.get("labels")
        if labels:
            metadata["labels"] = labels
        given = meta.get("annotations") or {}
        ignored = tuple(f"{prefix}/" for prefix in {*self._detect_marked_prefixes(given), self.prefix})
        annotations = {k: v for k, v in given.items() if k != _LAST_APPLIED and not k.startswith(ignored)}
        for key in self.watched_annotations:
            if key in given:
                annotations[key] = given[key]
        if annotations:
            metadata["annotations"] = annotations
        if metadata:
            essence["metadata"] = metadata
        return essence

    def fetch(self, *, body: kopf.Body) -> Any:
        annotations = body.metadata.annotations
        stored = annotations.get(self.annotation)
        if stored is not None:
            return {DIGEST_KEY: stored.strip()}
        legacy = annotations.get(self.legacy_annotation)
        if legacy is not None:
            # Objects last handled by a release that stored the whole essence: compare its digest, so an
            # upgrade does not look like an update of every object.
            try:
                essence = json.loads(legacy)
            except ValueError:
                return None
            return {DIGEST_KEY: self._digest(self._normalised(essence, annotations))}
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        patch.metadata.annotations[self.annotation] = str(essence[DIGEST_KEY])
        if self.legacy_annotation in body.metadata.annotations:
            patch.metadata.annotations[self.legacy_annotation] = None
