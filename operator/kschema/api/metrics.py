"""Prometheus metrics of one read-API application, in its own registry (several apps can share a
process, e.g. in tests, without clashing).

Per-request counts and latencies are kept in plain dicts and lists and rendered as Prometheus' counter
and histogram families at scrape time: every request is observed on the event loop's one thread, and
prometheus-client's `Counter.inc` plus `Histogram.observe` (a lock per value touched) cost more than the
lookup they measure."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

# Most lookups are served from memory in tens of microseconds (the finest buckets resolve their p99);
# compatibility checks take longer.
LATENCY_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


Recorder = Callable[[web.BaseRequest, int, float], None]
"""Records one request of a route: the request, its response's status and the seconds it took."""

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
"""Methods counted under their own name; any other is counted as OTHER."""
OTHER = "OTHER"

UNMATCHED = "unmatched"
"""The route label of requests no route matched (404) or matched with another method (405)."""


class RouteStats:
    """Counts and latencies of one route template, by method and status: one list per pair holds the
    per-bucket counts (the last one for +Inf) and then the sum of seconds, so a request touches one list
    (its count is the sum of its buckets, added up at scrape time). The histogram, by method only, adds
    up a method's statuses at scrape time."""

    __slots__ = ("_series",)

    def __init__(self) -> None:
        self._series: dict[tuple[str, int], list[float]] = {}

    def recorder(self, method: str | None = None) -> Recorder:
        """`record(request, status, seconds)` for this route: a request's whole cost in metrics. With
        `method` given (a route that serves only that method) the request's own is not looked up. A
        `GET` route sends what it answers with 200 (the serializers' lookups) straight to that series:
        no key is built and no dict is searched."""
        observe = self.observe
        if method is None:

            def record_any(request: web.BaseRequest, status: int, seconds: float) -> None:
                observe(request.method, status, seconds)

            return record_any
        if method != "GET":

            def record_method(request: web.BaseRequest, status: int, seconds: float) -> None:
                observe(method, status, seconds)

            return record_method
        ok = self.series("GET", 200)

        def record_get(request: web.BaseRequest, status: int, seconds: float) -> None:
            if status == 200:
                ok[bisect_left(LATENCY_BUCKETS, seconds)] += 1
                ok[-1] += seconds
            else:
                observe("GET", status, seconds)

        return record_get

    def observe(self, method: str, status: int, seconds: float) -> None:
        series = self._series.get((method, status))
        if series is None:
            series = self.series(method, status)
        series[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        series[-1] += seconds

    def series(self, method: str, status: int) -> list[float]:
        """The live series of a method and status, created empty on first use."""
        # A method outside METHODS (clients may send any token) is counted as OTHER and never becomes a
        # key of its own: the series stay bounded, and the common methods pay no check per request.
        key = (method if method in METHODS else OTHER, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        return series

    def counts(self) -> list[tuple[tuple[str, int], int]]:
        """Requests by method and status, series never observed left out."""
        counted = ((key, int(sum(series[:-1]))) for key, series in list(self._series.items()))
        return [(key, count) for key, count in counted if count]

    def latencies(self) -> list[tuple[str, list[float]]]:
        """Per method: the per-bucket counts (the last one for +Inf), then the sum of seconds."""
        by_method: dict[str, list[float]] = {}
        for (method, _), series in list(self._series.items()):
            if not any(series[:-1]):
                continue
            total = by_method.get(method)
            if total is None:
                by_method[method] = list(series)
            else:
                by_method[method] = [a + b for a, b in zip(total, series, strict=True)]
        return list(by_method.items())


class RequestStats(Collector):
    """`kschema_api_requests_total` by method, route template and status, and
    `kschema_api_request_duration_seconds` by method and route template. Each route's handler holds its
    own `RouteStats` (see `handling.py`), so a request costs no lookup of its route here."""

    def __init__(self) -> None:
        self._routes: dict[str, RouteStats] = {}

    def route(self, template: str) -> RouteStats:
        found = self._routes.get(template)
        if found is None:
            found = self._routes[template] = RouteStats()
        return found

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "kschema_api_requests",
            "HTTP requests served, by method, route template and status.",
            labels=["method", "route", "status"],
        )
        routes = list(self._routes.items())
        for route, stats in routes:
            for (method, status), count in stats.counts():
                requests.add_metric([method, route, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "kschema_api_request_duration_seconds",
            "Time to serve a request, by method and route template.",
            labels=["method", "route"],
        )
        # The `le` labels as prometheus-client writes them (`0.005`, `1.0`, `+Inf`).
        bounds = [*(repr(float(b)) for b in LATENCY_BUCKETS), "+Inf"]
        for route, stats in routes:
            for method, values in stats.latencies():
                cumulative = 0.0
                buckets: list[tuple[str, float]] = []
                for bound, in_bucket in zip(bounds, values[:-1], strict=True):
                    cumulative += in_bucket
                    buckets.append((bound, cumulative))
                latency.add_metric([method, route], buckets, values[-1])
        yield latency


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = RequestStats()
        self.registry.register(self.requests)
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
