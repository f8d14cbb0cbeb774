"""Prometheus metrics of the API process (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from pushcamp.metrics import REGISTRY

REQUESTS = Counter(
    "pushcamp_http_requests_total",
    "HTTP requests by route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "pushcamp_http_request_seconds",
    "HTTP request latency by route template.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "pushcamp_rate_limited_total",
    "Requests refused with 429, by rate-limit policy.",
    ["policy"],
    registry=REGISTRY,
)
DEPENDENCY_FAILURES = Counter(
    "pushcamp_dependency_failures_total",
    "Requests answered 424 because a dependency failed.",
    registry=REGISTRY,
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    REQUEST_SECONDS.labels(route).observe(seconds)
