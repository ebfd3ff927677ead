"""The read API's per-route request statistics, as the scrape renders them."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request
from prometheus_client import generate_latest

from kschema.api.metrics import ApiMetrics


def _samples(metrics: ApiMetrics) -> dict[str, float]:
    found = {}
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def test_counts_by_status_and_one_histogram_per_method() -> None:
    metrics = ApiMetrics()
    route = metrics.requests.route("/schemas/ids/{id}")
    route.observe("GET", 200, 0.00002)
    route.observe("GET", 200, 0.003)
    route.observe("GET", 404, 0.00002)
    route.observe("HEAD", 200, 30.0)
    samples = _samples(metrics)
    assert samples['kschema_api_requests_total{method="GET",route="/schemas/ids/{id}",status="200"}'] == 2
    assert samples['kschema_api_requests_total{method="GET",route="/schemas/ids/{id}",status="404"}'] == 1
    assert samples['kschema_api_requests_total{method="HEAD",route="/schemas/ids/{id}",status="200"}'] == 1
    get = 'method="GET",route="/schemas/ids/{id}"'
    assert samples[f"kschema_api_request_duration_seconds_count{{{get}}}"] == 3
    assert abs(samples[f"kschema_api_request_duration_seconds_sum{{{get}}}"] - 0.00304) < 1e-12
    # Cumulative: both 20 µs requests by 25 µs, the 3 ms one only by 5 ms.
    assert samples[f'kschema_api_request_duration_seconds_bucket{{le="1e-05",{get}}}'] == 0
    assert samples[f'kschema_api_request_duration_seconds_bucket{{le="2.5e-05",{get}}}'] == 2
    assert samples[f'kschema_api_request_duration_seconds_bucket{{le="0.0025",{get}}}'] == 2
    assert samples[f'kschema_api_request_duration_seconds_bucket{{le="0.005",{get}}}'] == 3
    assert samples[f'kschema_api_request_duration_seconds_bucket{{le="+Inf",{get}}}'] == 3
    head = 'method="HEAD",route="/schemas/ids/{id}"'
    assert samples[f'kschema_api_request_duration_seconds_bucket{{le="2.5",{head}}}'] == 0
    assert samples[f'kschema_api_request_duration_seconds_bucket{{le="+Inf",{head}}}'] == 1


def test_an_upper_bound_counts_in_its_own_bucket() -> None:
    metrics = ApiMetrics()
    metrics.requests.route("/").observe("GET", 200, 0.001)
    samples = _samples(metrics)
    assert samples['kschema_api_request_duration_seconds_bucket{le="0.0005",method="GET",route="/"}'] == 0
    assert samples['kschema_api_request_duration_seconds_bucket{le="0.001",method="GET",route="/"}'] == 1


def test_methods_outside_the_known_ones_share_one_series_per_status() -> None:
    metrics = ApiMetrics()
    route = metrics.requests.route("unmatched")
    for i in range(500):
        route.observe(f"X-METHOD-{i}", 405, 0.00002)
    route.observe("PATCH", 405, 0.00002)
    samples = _samples(metrics)
    assert samples['kschema_api_requests_total{method="OTHER",route="unmatched",status="405"}'] == 500
    assert samples['kschema_api_requests_total{method="PATCH",route="unmatched",status="405"}'] == 1
    assert not [name for name in samples if "X-METHOD" in name]
    assert len(route.counts()) == 2


def test_a_recorder_counts_what_observe_counts_and_a_served_method_labels_every_request() -> None:
    recorded, observed = ApiMetrics(), ApiMetrics()
    by_request = recorded.requests.route("/a").recorder()
    only_head = recorded.requests.route("/b").recorder("HEAD")
    cases = [("GET", 200, 0.00002), ("GET", 404, 0.003), ("PATCH", 200, 0.1), ("X-ODD", 405, 1.0)]
    for method, status, seconds in cases:
        by_request(make_mocked_request(method, "/a"), status, seconds)
        observed.requests.route("/a").observe(method, status, seconds)
    # A route that serves one method labels with it, whatever the request object says.
    only_head(make_mocked_request("GET", "/b"), 200, 0.00002)
    only_head(make_mocked_request("GET", "/b"), 503, 0.00002)
    observed.requests.route("/b").observe("HEAD", 200, 0.00002)
    observed.requests.route("/b").observe("HEAD", 503, 0.00002)
    # A GET route: its 200s go straight to their series, anything else as observe counts it.
    only_get = recorded.requests.route("/c").recorder("GET")
    for status, seconds in [(200, 0.00002), (200, 0.004), (404, 0.00002), (500, 2.0)]:
        only_get(make_mocked_request("HEAD", "/c"), status, seconds)
        observed.requests.route("/c").observe("GET", status, seconds)

    def requests(metrics: ApiMetrics) -> dict[str, float]:
        return {name: v for name, v in _samples(metrics).items() if name.startswith("kschema_api_request")}

    assert requests(recorded) == requests(observed)
    samples = _samples(recorded)
    assert samples['kschema_api_requests_total{method="OTHER",route="/a",status="405"}'] == 1
    assert samples['kschema_api_requests_total{method="GET",route="/c",status="200"}'] == 2


def test_a_route_never_requested_exports_no_series() -> None:
    metrics = ApiMetrics()
    metrics.requests.route("/quiet").recorder()
    metrics.requests.route("/quiet").recorder("GET")
    assert not [name for name in _samples(metrics) if "/quiet" in name]
