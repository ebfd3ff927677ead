"""kopf's diff base kept as a digest instead of a copy of the object.

kopf remembers the last handled state of each object to tell an update from a no-op. Its annotation
storage keeps a JSON copy of the whole spec in an annotation: a Schema's text then counts twice against
the object's size and once against the 256 KiB limit of all annotations together, so a schema of a few
hundred KB is stored but never gets its status, and cannot be deleted. Our handlers are level-based: they
need to know *that* the object changed, never *what* changed. So the diff base here is a SHA-256 digest of
what kopf would have stored; a different digest is an update, the same digest a no-op.

The digest lives in the status (`status.handledDigest`), next to what the reconcile writes there anyway: a
reconcile is then one status patch, where a digest in an annotation costs a second write to the object
(and a second watch event for every watcher). Digests that earlier releases kept in annotations are read
and removed the first time an object is handled again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

import kopf

DIGEST_KEY = "digest"
DIGEST_STATUS_FIELD = "handledDigest"
# What kopf's own essence leaves out: the identity and system stanzas, and kubectl's copy of the object.
_NOT_ESSENCE = frozenset({"apiVersion", "kind", "metadata", "status"})
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class DigestDiffBaseStorage(kopf.DiffBaseStorage):
    """Stores `status.{field}: <sha256>`; removes the annotations earlier releases wrote (the digest as
    `{prefix}/{key}`, kopf's copy of the essence as `{prefix}/{legacy_key}`) the first time it handles
    the object.

    Annotations under `prefix` are kopf's bookkeeping and never part of the essence, except the ones in
    `watched_annotations`, which are declared by users (a Subject's transfer annotation) and must trigger a
    reconcile when they change.

    `deferred(uid)` says that a deferred reconcile of the object is pending (see `deferral`): it writes
    the digest with its outcome, so kopf's handling does not write it first."""

    def __init__(
        self,
        *,
        field: str,
        prefix: str,
        key: str,
        legacy_key: str,
        watched_annotations: Iterable[str] = (),
        deferred: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__()
        self.deferred = deferred
        self.field = field
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
        stored = body.status.get(self.field)
        if isinstance(stored, str):
            return {DIGEST_KEY: stored}
        annotations = body.metadata.annotations
        kept = annotations.get(self.annotation)
        if kept is not None:  # an earlier release's place for the digest
            return {DIGEST_KEY: kept.strip()}
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
        if self.deferred is not None and self.deferred(str(body.metadata.uid)):
            return
        patch.status[self.field] = str(essence[DIGEST_KEY])
        for earlier in (self.annotation, self.legacy_annotation):
            if earlier in body.metadata.annotations:
                patch.metadata.annotations[earlier] = None


class MarkedProgressStorage(kopf.AnnotationsProgressStorage):
    """kopf's progress storage in annotations, with its marker (`{prefix}/kopf-managed`, which tells other
    kopf-based operators that annotations under the prefix are bookkeeping) written only together with a
    progress record that stays on the object.

    kopf stores a record for every handler it runs and purges it again when the handler succeeded at
    once, which left the marker alone in the patch: a write to the object (and a watch event for every
    watcher) on the first reconcile of every object, for an annotation no one needed yet. A handler that
    is retried keeps its record, and the marker with it."""

    def purge(self, *, key: kopf.HandlerId, body: kopf.Body, patch: kopf.Patch) -> None:
        super().purge(key=key, body=body, patch=patch)
        marker = f"{self.prefix}/kopf-managed"
        metadata = patch.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        if marker not in annotations or marker in body.metadata.annotations:
            return
        prefix = f"{self.prefix}/"
        if any(k.startswith(prefix) and v is not None for k, v in annotations.items() if k != marker):
            return
        del annotations[marker]
        if not annotations:
            del metadata["annotations"]
            if not metadata:
                del patch["metadata"]
