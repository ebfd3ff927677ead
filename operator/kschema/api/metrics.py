"""Prometheus metrics of one read-API application, in its own registry (several apps can share a
process, e.g. in tests, without clashing)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Most lookups are served from memory in well under a millisecond; compatibility checks take longer.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "kschema_api_requests",
            "HTTP requests served, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kschema_api_request_duration_seconds",
            "Time to serve a request, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.versions_loaded = Gauge(
            "kschema_api_versions_loaded", "Subject versions held by the index.", registry=self.registry
        )
        self.schemas_loaded = Gauge(
            "kschema_api_schemas_loaded", "Schema IDs held by the index.", registry=self.registry
        )
        self.feed_seq = Gauge(
            "kschema_api_feed_seq", "Last change-feed sequence applied to the index.", registry=self.registry
        )
        self.feed_lag = Gauge(
            "kschema_api_feed_lag_seconds",
            "Time between the store recording the last applied change and the index applying it.",
            registry=self.registry,
        )
        self.feed_errors = Counter(
            "kschema_api_feed_errors",
            "Failed attempts to read the store's change feed.",
            registry=self.registry,
        )
        self.snapshots = Counter(
            "kschema_api_snapshots", "Full loads of the index from a store snapshot.", registry=self.registry
        )
        # Label lookups take a lock and hash the label tuple; the hot path reuses the children instead.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def route_template(request: web.Request) -> str:
    """The route's template (`/schemas/ids/{id}`), never the raw path: raw paths would make one time
    series per ID and subject."""
    info = request.match_info
    resource = info.route.resource
    if resource is None or info.http_exception is not None:
        return "unmatched"
    return resource.canonical
