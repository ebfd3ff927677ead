"""The operator's settings: one small typed group, read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kschema.compat import CompatibilityLevel

DEFAULT_INLINE_RECONCILES = 128


@dataclass(frozen=True, slots=True)
class OperatorSettings:
    """How the operator connects, which namespaces it serves, and how it retries.

    Defaults are safe for a single replica in a cluster: every namespace, leader election on through a
    `ClusterKopfPeering` named `kschema`, and a bounded wait on the store while deleting.
    """

    namespaces: tuple[str, ...] = ()
    """Namespaces to serve; empty serves the whole cluster."""

    kubeconfig: Path | None = None
    """A kubeconfig file; None uses the in-cluster service account, then `$KUBECONFIG`/~/.kube/config."""

    peering: str | None = "kschema"
    """kopf peering object for leader election: replicas with lower priority stand by while a higher one
    (or an equal, earlier one) is alive. None runs standalone (no election: a single replica only)."""

    priority: int = 0
    """This replica's peering priority; the highest alive replica works."""

    retry_delay: float = 1.0
    """First delay in seconds after a temporary error (store down, reference not registered yet); it
    doubles on every retry up to `retry_max_delay`."""

    retry_max_delay: float = 60.0

    deletion_timeout: float = 600.0
    """How long a deletion waits for an unavailable store before it lets the resource go. Long enough to
    ride out a database restart or a PostgreSQL fail-over (typically well under a minute, and a node
    drain of the database pod a few minutes); short enough that a permanently broken store does not
    hold a namespace in Terminating forever. What is given up is a soft-delete: the version or subject
    stays listed in the registry (its IDs resolve either way) until the resource is applied and deleted
    again."""

    resync_interval: float = 300.0
    """How often each Schema's status is compared with the registry store and put right: a `status.id`
    overwritten through the status subresource is restored within this many seconds."""

    timer_exit_polling: float = 1.0
    """How often kopf looks again at a deleted Subject whose resync was still running when the deletion
    came (its finalizer waits for the resync to return)."""

    reconcile_concurrency: int = 64
    """How many reconciles of one kind (Subjects, Schemas) run at once. kopf starts a handler for every
    object of a burst at once (11,000 at the start-up of a large tenant); beyond this many, they wait their
    turn in arrival order, so a burst works through with bounded memory, and the Schemas of one subject
    register close together in time (their ConfigMap is then written once for several of them)."""

    inline_reconciles: int = DEFAULT_INLINE_RECONCILES
    """How many Schema reconciles may wait for their turn inside kopf's processing of their objects. Each
    keeps about 20 KiB of kopf's state alive while it waits; past this many (a burst: an Argo CD sync of
    a large tenant, a start-up), a reconcile hands its registration to a task of its own, of a few KiB,
    and lets kopf's processing end. The outcome and the status write are the same."""

    worker_idle_seconds: float = 1.0
    """How long a worker with nothing to do keeps its place, waiting for the object's next event (the
    echo of its own patch usually comes within milliseconds)."""

    projection_limit_bytes: int = 1_000_000
    """ConfigMaps are limited to 1 MiB; a projection larger than this is refused with a clear reason."""

    field_manager: str = "kschema-operator"
    """Server-side field manager name for the objects the operator writes."""

    liveness_endpoint: str | None = None
    """kopf's health endpoint, e.g. `http://0.0.0.0:8080/healthz`; None serves none."""

    default_compatibility: CompatibilityLevel = CompatibilityLevel.BACKWARD
    """The level of Subjects without `spec.compatibility` (`--default-compatibility`)."""

    def backoff(self, retry: int) -> float:
        """Delay before retry number `retry` (0-based) of a temporary error."""
        return float(min(self.retry_max_delay, self.retry_delay * (2 ** min(retry, 30))))
