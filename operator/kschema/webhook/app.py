"""The aiohttp application: AdmissionReview in, verdict out, decisions made by `kschema.policy`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kschema.compute import WorkerPool, tasks
from kschema.formats.budget import TooComplexError
from kschema.model import (
    SCHEMA_KIND,
    SUBJECT_KIND,
    SchemaSpec,
    SpecError,
    SubjectSpec,
    schema_from_body,
    subject_from_body,
)
from kschema.policy import Catalog, Decision, missing_registry_references
from kschema.policy.slicing import schema_review_slice, subject_review_slice
from kschema.store.base import RegistryStore
from kschema.webhook.cache import DeclaredCache
from kschema.webhook.metrics import WebhookMetrics, timing_middleware
from kschema.webhook.registry import gather_facts
from kschema.webhook.settings import SCHEMAS_PATH, SUBJECTS_PATH, WebhookSettings

log = logging.getLogger(__name__)

REVIEWER_KEY: web.AppKey[Reviewer] = web.AppKey("reviewer")
METRICS_KEY: web.AppKey[WebhookMetrics] = web.AppKey("webhook_metrics", WebhookMetrics)


class Reviewer:
    """Turns one AdmissionRequest into a Decision: reads the cache and the store, then runs the policy
    in a worker process (`pool`), so a long compatibility check never stalls health checks or other
    requests, and one past its deadline is killed and refused."""

    def __init__(
        self, settings: WebhookSettings, cache: DeclaredCache, store: RegistryStore | None, pool: WorkerPool
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.store = store
        self.pool = pool
        self._slices = _SliceCache()

    async def _catalog(self) -> Catalog:
        if not await self.cache.wait_synced(self.settings.cache_sync_timeout):
            raise _NotReady("the webhook has not finished listing Subjects and Schemas yet; retry")
        return self.cache.catalog()

    async def review_subject(self, new: SubjectSpec | None, old: SubjectSpec | None) -> Decision:
        catalog = await self._catalog()
        if new is not None and old is not None and new == old:
            return Decision()
        subject = new or old
        assert subject is not None
        waiting = catalog.schemas_of(subject)
        facts = await gather_facts(
            self.store,
            catalog,
            subjects=[subject.name],
            references=[r for s in waiting for r in s.references],
            limit_seconds=self.settings.store_timeout,
        )
        part = subject_review_slice(new, old, catalog)
        return await self.pool.run(tasks.review_subject, new, old, part, facts)

    async def review_schema(self, new: SchemaSpec | None, old: SchemaSpec | None) -> Decision:
        catalog = await self._catalog()
        if new is not None and old is not None:
            # Updates only change state or metadata (content is immutable): no store reads needed.
            part = schema_review_slice(new, old, catalog)
            return await self.pool.run(tasks.review_schema, new, old, part, None)
        spec = new or old
        assert spec is not None
        fresh = False
        if new is not None and catalog.subject_resource(spec.namespace, spec.subject) is None:
            catalog, fresh = await self.cache.fresh_catalog(), True
        facts = await self._facts(spec, catalog)
        if new is not None and not fresh and missing_registry_references(new.references, catalog, facts):
            # Confirm the absence against the API server before refusing a dangling reference.
            catalog = await self.cache.fresh_catalog()
            facts = await self._facts(spec, catalog)
        # Only what the review reads crosses into the worker, not every declared Schema.
        part = self._slices.schema_slice(new, old, catalog)
        return await self.pool.run(tasks.review_schema, new, old, part, facts)

    async def _facts(self, spec: SchemaSpec, catalog: Catalog) -> Any:
        subject = catalog.subject_resource(spec.namespace, spec.subject)
        siblings = catalog.schemas_of(subject) if subject is not None else []
        return await gather_facts(
            self.store,
            catalog,
            subjects=[subject.name] if subject is not None else [],
            versions=[(subject.name, spec.version)] if subject is not None else [],
            references=[*spec.references, *(r for s in siblings for r in s.references)],
            pinned_ids=[spec.pinned_id] if spec.pinned_id is not None else [],
            limit_seconds=self.settings.store_timeout,
        )


class _NotReady(Exception):
    pass


class _SliceCache:
    """The slices of one catalog snapshot for the creates of versions without references or a pinned
    ID, by Subject: such a version's slice is its Subject's (the Subjects of its registry name, its
    declared versions and the closure of their references), the same for every one of them while the
    snapshot is. A new snapshot (any change in the cluster) starts afresh."""

    MAX_ENTRIES = 256

    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        self._slices: dict[tuple[str, str], Catalog] = {}

    def schema_slice(self, new: SchemaSpec | None, old: SchemaSpec | None, catalog: Catalog) -> Catalog:
        if new is None or old is not None or new.references or new.pinned_id is not None:
            return schema_review_slice(new, old, catalog)
        if catalog is not self._catalog:
            self._catalog = catalog
            self._slices = {}
        key = (new.namespace, new.subject)
        found = self._slices.get(key)
        if found is None:
            found = schema_review_slice(new, None, catalog)
            if len(self._slices) >= self.MAX_ENTRIES:
                self._slices.clear()
            self._slices[key] = found
        return found


def _with_namespace(body: Mapping[str, Any] | None, request: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Objects in an AdmissionRequest may omit metadata.namespace (and metadata.name with generateName);
    the request carries them."""
    if not body:
        return None
    meta = dict(body.get("metadata") or {})
    meta.setdefault("namespace", request.get("namespace") or "default")
    if not meta.get("name"):
        meta["name"] = request.get("name") or f"{meta.get('generateName', '')}<generated>"
    return {**body, "metadata": meta}


async def _decide(reviewer: Reviewer, kind: str, request: Mapping[str, Any]) -> Decision:
    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE", "DELETE"):
        return Decision()
    new_body = _with_namespace(request.get("object"), request) if operation != "DELETE" else None
    old_body = _with_namespace(request.get("oldObject"), request) if operation != "CREATE" else None
    meta = (new_body or old_body or {}).get("metadata", {})
    who = f"{kind} {meta.get('namespace', '')}/{meta.get('name', '')}"
    try:
        if kind == SUBJECT_KIND:
            default = reviewer.settings.default_compatibility
            new_subject = subject_from_body(new_body, default) if new_body else None
            try:
                old_subject = subject_from_body(old_body, default) if old_body else None
            except SpecError:
                old_subject = None  # an old object the current model cannot read must not block changes
            if new_subject is None and old_subject is None:
                return Decision()
            return await reviewer.review_subject(new_subject, old_subject)
        new_schema = schema_from_body(new_body) if new_body else None
        try:
            old_schema = schema_from_body(old_body) if old_body else None
        except SpecError:
            old_schema = None
        if new_schema is None and old_schema is None:
            return Decision()
        return await reviewer.review_schema(new_schema, old_schema)
    except SpecError as exc:
        return Decision((f"{who}: {exc}",))


def _review_response(uid: str, decision: Decision, code: int = 403) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": decision.allowed}
    if not decision.allowed:
        response["status"] = {
            "code": code,
            "reason": "Forbidden" if code == 403 else "ServiceUnavailable",
            "message": decision.message,
        }
    if decision.warnings:
        response["warnings"] = list(decision.warnings)
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def _handler(kind: str) -> Any:
    async def handle(request: web.Request) -> web.Response:
        try:
            review = await request.json()
            admission = review["request"]
            uid = str(admission["uid"])
        except (ValueError, KeyError, TypeError):
            return web.json_response(
                {"message": "expected an AdmissionReview with a request.uid"}, status=400
            )
        got_kind = (admission.get("kind") or {}).get("kind")
        if got_kind and got_kind != kind:
            decision = Decision((f"this endpoint reviews {kind} objects, not {got_kind}",))
            return web.json_response(_review_response(uid, decision, code=400))
        reviewer = request.app[REVIEWER_KEY]
        try:
            decision = await _decide(reviewer, kind, admission)
        except _NotReady as exc:
            return web.json_response(_review_response(uid, Decision((str(exc),)), code=503))
        except TooComplexError as exc:
            # The worker ran past its deadline or memory limit and was replaced: a refusal, not a failure.
            meta = (admission.get("object") or admission.get("oldObject") or {}).get("metadata", {})
            who = f"{kind} {admission.get('namespace') or meta.get('namespace', '')}/{meta.get('name', '')}"
            return web.json_response(_review_response(uid, Decision((f"{who}: {exc}",))))
        except Exception:
            log.exception("Failed to review: kind=%s uid=%s", kind, uid)
            decision = Decision(("the kschema webhook failed while reviewing this request; see its log",))
            return web.json_response(_review_response(uid, decision, code=500))
        meta = (admission.get("object") or admission.get("oldObject") or {}).get("metadata", {})
        log.info(
            "Reviewed: kind=%s operation=%s resource=%s/%s allowed=%s warnings=%d dry_run=%s",
            kind,
            admission.get("operation"),
            admission.get("namespace") or meta.get("namespace"),
            admission.get("name") or meta.get("name"),
            decision.allowed,
            len(decision.warnings),
            bool(admission.get("dryRun")),
        )
        return web.json_response(_review_response(uid, decision))

    return handle


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS_KEY].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _readyz(request: web.Request) -> web.Response:
    if request.app[REVIEWER_KEY].cache.synced:
        return web.Response(text="ok")
    return web.Response(text="cache not synced", status=503)


def create_app(
    settings: WebhookSettings,
    cache: DeclaredCache,
    store: RegistryStore | None,
    pool: WorkerPool,
    metrics: WebhookMetrics | None = None,
) -> web.Application:
    metrics = metrics if metrics is not None else WebhookMetrics()
    app = web.Application(
        client_max_size=settings.max_review_bytes,
        middlewares=[timing_middleware(metrics, {SUBJECTS_PATH: SUBJECT_KIND, SCHEMAS_PATH: SCHEMA_KIND})],
    )
    app[REVIEWER_KEY] = Reviewer(settings, cache, store, pool)
    app[METRICS_KEY] = metrics
    app.router.add_routes(
        [
            web.post(SUBJECTS_PATH, _handler(SUBJECT_KIND)),
            web.post(SCHEMAS_PATH, _handler(SCHEMA_KIND)),
            web.get("/healthz", _healthz),
            web.get("/readyz", _readyz),
            web.get("/metrics", _metrics),
        ]
    )
    return app
