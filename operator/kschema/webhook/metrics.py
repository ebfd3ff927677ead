"""Prometheus metrics of the admission webhook, in its own registry, and the timing middleware that
feeds them: each review is timed from the moment its request reaches the application to the moment its
response has been written, so the figure is the webhook's own share of an admission."""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram

# The API server waits 10 s at most; the targets are tens of milliseconds, so the buckets are fine there.
REVIEW_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
# Exact durations of the latest reviews per kind, for percentiles finer than the buckets (benchmarks).
RECENT_REVIEWS = 4096

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebhookMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.review_seconds = Histogram(
            "kschema_webhook_review_duration_seconds",
            "Time from an AdmissionReview request reaching the webhook to its response being written.",
            ["kind", "status"],
            buckets=REVIEW_BUCKETS,
            registry=self.registry,
        )
        self.recent: dict[str, collections.deque[float]] = {}

    def observe(self, kind: str, status: int, seconds: float) -> None:
        self.review_seconds.labels(kind, str(status)).observe(seconds)
        self.recent.setdefault(kind, collections.deque(maxlen=RECENT_REVIEWS)).append(seconds)


def timing_middleware(
    metrics: WebhookMetrics, kinds: dict[str, str]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Times the requests to the paths in `kinds` (path -> kind)."""

    @web.middleware
    async def timing(request: web.Request, handler: Handler) -> web.StreamResponse:
        kind = kinds.get(request.path)
        if kind is None:
            return await handler(request)
        started = time.perf_counter()
        response = await handler(request)
        # Written here, so the time includes serialising and sending the answer; aiohttp then finds the
        # response prepared and finished and has nothing left to do.
        await response.prepare(request)
        await response.write_eof()
        metrics.observe(kind, response.status, time.perf_counter() - started)
        return response

    return timing
