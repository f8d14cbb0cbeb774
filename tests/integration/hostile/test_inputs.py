"""No input gives a 500: numbers outside the float range, NaN/Infinity literals, huge
integers, and clients hanging up mid-body, on every endpoint that reads a JSON body.
Each gets a 4xx (or nothing, for the hang-up), with no error in the log and no 5xx in
the metrics."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import Tenant
from tests.integration.hostile.conftest import LoggedServer
from tests.integration.hostile.rawhttp import (
    connect,
    metric_total,
    read_until_closed,
    request_bytes,
)

# (method, path, metrics route) of every endpoint with a JSON body.
BODY_ENDPOINTS = [
    ("POST", "/v1/single", "/v1/single"),
    ("DELETE", "/v1/single/1", "/v1/single/{campaign_id}"),
    ("POST", "/v1/single/1", "/v1/single/{campaign_id}"),
    ("POST", "/v2/single/1", "/v2/single/{campaign_id}"),
    ("POST", "/v1/subscriptions", "/v1/subscriptions"),
    ("DELETE", "/v1/subscriptions", "/v1/subscriptions"),
    ("POST", "/v1/events", "/v1/events"),
    ("POST", "/v1/statistics/campaign-metrics", "/v1/statistics/campaign-metrics"),
    ("POST", "/v1/statistics/overall-metrics", "/v1/statistics/overall-metrics"),
    ("POST", "/v1/statistics/top-metrics", "/v1/statistics/top-metrics"),
]

HUGE = "9" * 4000  # within Python's int-parsing limit, far beyond any column
HOSTILE_VALUES = {
    "1e400": "1e400",
    "-1e400": "-1e400",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "2**64": str(2**64),
    "-2**63-1": str(-(2**63) - 1),
    "4000 digits": HUGE,
    "5000 digits": "9" * 5000,  # beyond Python's limit
    "1e-400": "1e-400",
}
NOT_FLOATS = {"1e400", "-1e400", "NaN", "Infinity", "-Infinity"}
# Fields that hold numbers somewhere in the API, and a few that hold strings.
FIELDS = ["ttl", "page", "per_page", "value", "campaign_id", "title", "partner_id", "is_all"]


def hostile_body(partner_id: str, field: str, literal: str) -> bytes:
    common = (
        f'"partner_id": "{partner_id}", "title": "t", "language": "en_US", "type": "visit", '
        '"endpoint": "https://fcm.googleapis.com/fcm/send/x", "start_date": "2024-01-01", '
        '"end_date": "2024-01-31"'
    )
    return ("{" + common + f', "{field}": {literal}' + "}").encode()


@pytest.mark.parametrize("value", list(HOSTILE_VALUES), ids=list(HOSTILE_VALUES))
def test_hostile_numbers_never_get_a_5xx(guarded: LoggedServer, make_tenant, value: str) -> None:  # type: ignore[no-untyped-def]
    tenant: Tenant = make_tenant(v1_limit=100_000, v2_limit=100_000)
    offset = guarded.log_offset()
    before = httpx.get(guarded.url + "/metrics", timeout=10).text
    statuses = {}
    with httpx.Client(base_url=guarded.url, timeout=15) as client:
        for method, path, _ in BODY_ENDPOINTS:
            for field in FIELDS:
                body = hostile_body(tenant.partner_id, field, HOSTILE_VALUES[value])
                r = client.request(
                    method,
                    path,
                    content=body,
                    headers={**tenant.auth, "Content-Type": "application/json"},
                )
                statuses[(method, path, field)] = r.status_code
                assert r.headers["content-type"].startswith("application/json")
    # Not JSON numbers pushcamp can hold: refused whatever the field. Integers: refused
    # where a field takes them, ignored elsewhere; never a 5xx.
    refused = value in NOT_FLOATS or value == "5000 digits"
    wrong = {k: s for k, s in statuses.items() if s >= 500 or (refused and not 400 <= s < 500)}
    assert wrong == {}
    after = httpx.get(guarded.url + "/metrics", timeout=10).text
    for _, _, route in BODY_ENDPOINTS:
        assert metric_total(after, route, "5") == metric_total(before, route, "5") == 0
    assert guarded.errors_since(offset) == []


@pytest.mark.parametrize("literal", ["1e400", "NaN", "Infinity", "-Infinity"])
def test_a_non_finite_number_is_a_400_naming_the_body(
    guarded: LoggedServer, tenant: Tenant, literal: str
) -> None:
    r = httpx.post(
        guarded.url + "/v1/single",
        content=hostile_body(tenant.partner_id, "title", literal),
        headers=tenant.auth,
        timeout=10,
    )
    assert r.status_code == 400
    assert r.json() == {
        "message": "Bad Request",
        "errors": [{"field": "body", "reason": "not valid JSON"}],
    }


@pytest.mark.parametrize(("method", "path", "route"), BODY_ENDPOINTS)
def test_a_client_hanging_up_mid_body_gets_nothing_and_logs_no_error(
    guarded: LoggedServer, tenant: Tenant, method: str, path: str, route: str
) -> None:
    offset = guarded.log_offset()
    metrics = httpx.get(guarded.url + "/metrics", timeout=10).text
    before_4xx = metric_total(metrics, route, "4")
    head = request_bytes(
        method,
        path,
        "127.0.0.1",
        {**tenant.auth, "Content-Type": "application/json", "Content-Length": "4000"},
    )
    with connect(guarded.url) as sock:
        sock.sendall(head + hostile_body(tenant.partner_id, "ttl", "1")[:40])
        # Nothing comes back while the body is incomplete; then the client leaves.
        assert read_until_closed(sock, within=0.3) == (b"", False)
    # The server notices the hang-up and counts the request as the client's (499).
    for _ in range(50):  # bounded: up to ~5 s
        metrics = httpx.get(guarded.url + "/metrics", timeout=10).text
        if metric_total(metrics, route, "4") > before_4xx:
            break
        time.sleep(0.1)
    assert f'method="{method}",route="{route}",status="499"' in metrics
    assert metric_total(metrics, route, "5") == 0
    assert guarded.errors_since(offset) == []
