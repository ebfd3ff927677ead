"""What every handler shares: the operator context passed to kopf as `memo`, per-subject locks, and the
one place where domain outcomes become status conditions and kopf errors."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NoReturn

import kopf

from kschema.compute import WorkerPool
from kschema.kubeapi import KubeApiError
from kschema.model import GROUP, VERSION, SpecError
from kschema.operator import conditions
from kschema.operator.batches import KeyedBatches
from kschema.operator.blocked import Blocked
from kschema.operator.configmaps import Projector
from kschema.operator.deferral import Deferrals
from kschema.operator.events import EventRecorder, Note, ObjectRef
from kschema.operator.kube import Kube
from kschema.operator.registration import Registered, VersionRequest
from kschema.operator.schema_cache import SchemaCache
from kschema.operator.settings import DEFAULT_INLINE_RECONCILES, OperatorSettings
from kschema.operator.subject_status import Fields
from kschema.store import RegistryStore, SubjectRecord

# Annotation the Subject's reconcile sets on its Schemas to make them reconcile again (when the Subject
# appears, is re-created or goes away). Deliberately outside the `kschema.io/` prefix: kopf ignores
# annotations under its own storage prefix when it looks for changes.
SUBJECT_UID_ANNOTATION = "subject.kschema.io/uid"

logger = logging.getLogger(__name__)


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock


class SubjectArrivals:
    """Lets a Schema reconcile that finds its Subject missing (not indexed or not registered yet) wait a
    moment for it instead of reporting SubjectNotFound and waiting for a nudge: Subjects and their
    Schemas are usually applied together, and the Subject's reconcile is then a few moments behind."""

    def __init__(self) -> None:
        self._events: weakref.WeakValueDictionary[tuple[str, str], asyncio.Event] = (
            weakref.WeakValueDictionary()
        )
        self._arrived: set[tuple[str, str]] = set()
        self._waiting: dict[tuple[str, str], set[str]] = {}

    def arrived(self, namespace: str, name: str) -> None:
        self._arrived.add((namespace, name))
        event = self._events.pop((namespace, name), None)
        if event is not None:
            event.set()

    def attempted(self, namespace: str, name: str) -> None:
        """The Subject's reconcile ended without registering it (refused, or to be retried): the Schemas
        waiting for it go on now and report what their own registration finds."""
        event = self._events.pop((namespace, name), None)
        if event is not None:
            event.set()

    def left(self, namespace: str, name: str) -> None:
        self._arrived.discard((namespace, name))

    def seen(self, namespace: str, name: str) -> bool:
        """Whether the Subject was registered by this process (and not deleted since)."""
        return (namespace, name) in self._arrived

    def waiting(self, namespace: str, name: str) -> list[str]:
        """The Schemas waiting for the Subject now."""
        return sorted(self._waiting.get((namespace, name), ()))

    async def wait(self, namespace: str, name: str, timeout: float, schema: str) -> bool:  # noqa: ASYNC109  # a bound, not a deadline of the caller's
        """Whether the Subject's reconcile registered it, or ended without, within `timeout` seconds;
        `schema` is the Schema that waits."""
        event = self._events.get((namespace, name))
        if event is None:
            event = asyncio.Event()
            self._events[(namespace, name)] = event
        waiting = self._waiting.setdefault((namespace, name), set())
        waiting.add(schema)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        finally:
            waiting.discard(schema)
            if not waiting and self._waiting.get((namespace, name)) is waiting:
                del self._waiting[(namespace, name)]
        return True


class StoreReads:
    """Which Schemas have read the store since their Subject was last upserted, so that a Subject's
    reconcile nudges only the Schemas that may have stopped on its absence.

    The Subject's reconcile calls `upserted()` under the subject lock right after its upsert; a Schema's
    reconcile calls `started()` as it begins (before it looks the Subject up in the index) and `read()`
    once it found the Subject, at any moment before it reads the store (what it reads then includes every
    upsert counted until `read()`; a later one nudges it, needlessly but safely). A Schema then needs no
    nudge when its reconcile has not started yet in this process (it will, and will find the Subject in
    the index and the store), or when it read the store after the upsert. All in-process, so it never
    lags behind like the watch streams."""

    def __init__(self) -> None:
        self._tick = 0
        self._reads: dict[tuple[str, str], tuple[str, int] | None] = {}

    def upserted(self) -> int:
        self._tick += 1
        return self._tick

    def started(self, namespace: str, schema: str) -> None:
        self._reads[(namespace, schema)] = None

    def read(self, namespace: str, schema: str, registry_subject: str) -> None:
        self._reads[(namespace, schema)] = (registry_subject, self._tick)

    def forget(self, namespace: str, schema: str) -> None:
        self._reads.pop((namespace, schema), None)

    def may_be_waiting(self, namespace: str, schema: str, registry_subject: str, tick: int) -> bool:
        """Whether the Schema's last reconcile may have ended without seeing upsert `tick`."""
        if (namespace, schema) not in self._reads:
            return False  # its first reconcile in this process is still to come
        seen = self._reads[(namespace, schema)]
        return seen is None or seen[0] != registry_subject or seen[1] < tick


@dataclass
class OperatorContext:
    """kopf's `memo`. kopf gives every object a shallow copy made after start-up, so the clients created
    by the start-up handler are shared by all of them."""

    settings: OperatorSettings
    store: RegistryStore
    pool: WorkerPool
    subject_locks: KeyedLocks = field(default_factory=KeyedLocks)
    store_reads: StoreReads = field(default_factory=StoreReads)
    subject_arrivals: SubjectArrivals = field(default_factory=SubjectArrivals)
    # Versions waiting to be registered, by registry subject: those waiting together register together.
    registrations: KeyedBatches[VersionRequest, tuple[SubjectRecord, Registered]] = field(
        default_factory=KeyedBatches
    )
    # Schema reconciles past the limit of a burst finish outside kopf's processing (see `deferral`).
    deferrals: Deferrals = field(default_factory=lambda: Deferrals(DEFAULT_INLINE_RECONCILES))
    _turns: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _schemas: SchemaCache | None = None
    _kube: Kube | None = None
    _projector: Projector | None = None
    _events: EventRecorder | None = None

    @property
    def schemas(self) -> SchemaCache:
        """Stored schemas by ID, shared by every handler (kopf gives each object a shallow copy)."""
        if self._schemas is None:
            self._schemas = SchemaCache(self.store)
        return self._schemas

    def turn(self, kind: str) -> asyncio.Semaphore:
        """The places for reconciles of `kind` (`settings.reconcile_concurrency`), taken in arrival order.
        Taken only around work that never waits for a reconcile of the same kind, so a burst cannot stall
        on its own places. (kopf's own `queueing.worker_limit` cannot bound this: a worker keeps its place
        while it waits for every object to be indexed, so a start-up with more objects than places never
        runs a handler.)"""
        places = self._turns.get(kind)
        if places is None:
            places = self._turns[kind] = asyncio.Semaphore(self.settings.reconcile_concurrency)
        return places

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            raise RuntimeError("the Kubernetes client is created by the start-up handler")
        return self._kube

    @property
    def projector(self) -> Projector:
        if self._projector is None:
            raise RuntimeError("the projector is created by the start-up handler")
        return self._projector

    @property
    def events(self) -> EventRecorder:
        if self._events is None:
            raise RuntimeError("the event recorder is created by the start-up handler")
        return self._events

    def note(self, note: Note) -> None:
        self.events.record(note)

    def observe_subject_status(self, key: tuple[str, str], fields: Fields) -> None:
        """A Subject's status fields seen on the watch (before start-up ends, nothing is projected yet)."""
        if self._projector is not None:
            self._projector.status.observe(key, fields)

    def attach(self, kube: Kube, instance: str) -> None:
        self._kube = kube
        self._schemas = SchemaCache(self.store)  # before the per-object copies are made
        self._events = EventRecorder(kube, component="kschema-operator", instance=instance)
        self._projector = Projector(
            self.store,
            kube,
            schemas=self.schemas,
            limit_bytes=self.settings.projection_limit_bytes,
            field_manager=self.settings.field_manager,
        )


def set_status(
    patch: kopf.Patch,
    body: kopf.Body,
    updates: Sequence[conditions.Condition],
    **fields: Any,
) -> None:
    """Patches our own status: conditions (kept stable when unchanged), observedGeneration and fields."""
    generation = body.meta.get("generation")
    existing = body.status.get("conditions")
    patch.status["conditions"] = conditions.merge(
        existing if isinstance(existing, list) else [], updates, generation
    )
    patch.status["observedGeneration"] = generation
    for key, value in fields.items():
        patch.status[key] = value


def fail(blocked: Blocked, retry: int, settings: OperatorSettings) -> NoReturn:
    """Raises kopf's error for a blocked reconcile: temporary ones are retried with backoff."""
    if blocked.temporary:
        raise kopf.TemporaryError(blocked.message, delay=settings.backoff(retry)) from blocked
    raise kopf.PermanentError(f"{blocked.reason}: {blocked.message}") from blocked


def api_blocked(error: KubeApiError) -> Blocked:
    """Kubernetes API errors of our own calls: conflicts, throttling and server errors pass; anything
    else (forbidden, invalid) needs a person, but is still retried since RBAC may be fixed any time."""
    return Blocked(
        "KubernetesApiError", f"Kubernetes API answered {error.status}: {error.reason}", temporary=True
    )


def refuse_invalid_spec(
    patch: kopf.Patch, body: kopf.Body, error: SpecError, *others: conditions.Condition
) -> NoReturn:
    """An invalid spec waits for a new spec: `Ready=False` with the field and the reason, never retried."""
    set_status(patch, body, [conditions.Condition("Ready", False, "InvalidSpec", str(error)), *others])
    raise kopf.PermanentError(str(error)) from error


def release_blocked(
    blocked: Blocked,
    registry_object: str,
    retry: int,
    runtime: timedelta,
    memo: OperatorContext,
    ref: ObjectRef,
) -> None:
    """A deletion that could not complete. A permanent refusal (another namespace owns the subject, say)
    leaves the registry's `registry_object` alone and lets the resource go. A temporary one is retried
    with backoff; the release handlers' kopf `timeout` (`deletion_timeout`) bounds the retries: kopf
    gives up once the next retry would start past it and lets the resource go, so a broken store never
    holds a namespace deletion for ever. That last attempt is said in a Warning Event on the object."""
    if not blocked.temporary:
        logger.warning(
            "Left the registry %s alone namespace=%s name=%s reason=%s message=%s",
            registry_object,
            ref.namespace,
            ref.name,
            blocked.reason,
            blocked.message,
        )
        return
    settings = memo.settings
    if runtime.total_seconds() + settings.backoff(retry) >= settings.deletion_timeout:
        message = (
            f"Gave up soft-deleting the registry {registry_object} after {runtime.total_seconds():.0f} s "
            f"({blocked.reason}: {blocked.message}); it stays listed until the resource is applied and "
            "deleted again"
        )
        logger.error("%s namespace=%s name=%s", message, ref.namespace, ref.name)
        memo.note(Note(ref, "Warning", "CleanupAbandoned", message))
    fail(blocked, retry, settings)


def register_kind(
    registry: kopf.OperatorRegistry,
    plural: str,
    index_id: str,
    index: Callable[..., Any],
    reconcile: Callable[..., Any],
    release: Callable[..., Any],
    *,
    deletion_timeout: float,
    release_when: Callable[..., bool] | None = None,
) -> None:
    """One kind's handlers: its index, one level-based reconcile for create, update and resume, and the
    release on deletion. The release retries temporary failures (with the backoff its `TemporaryError`
    names) for `deletion_timeout` seconds: then kopf gives up and lets the resource go. kopf holds a
    finalizer on the objects `release_when` accepts (all when None)."""
    resource = (GROUP, VERSION, plural)
    kopf.index(*resource, registry=registry, id=index_id)(index)
    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(*resource, registry=registry, id="reconcile")(reconcile)
    kopf.on.delete(*resource, registry=registry, id="release", timeout=deletion_timeout, when=release_when)(
        release
    )


def object_ref(kind: str, body: kopf.Body) -> ObjectRef:
    meta = body.meta
    return ObjectRef(kind, str(meta.get("namespace") or ""), str(meta.get("name")), str(meta.get("uid")))


def ready_of(status: Mapping[str, Any]) -> bool:
    found = conditions.find(status.get("conditions"), "Ready")
    return found is not None and found.get("status") == "True"
