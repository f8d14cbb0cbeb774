"""Per-address rate limits of the public endpoints, the configured public URL, and
push hosts that are not listed -- on a server of their own (5 requests per minute per
address per endpoint; only ``localhost:9`` listed)."""

from __future__ import annotations

import httpx

from tests.conftest import Tenant
from tests.integration.subscribers.conftest import subscription


def test_loopback_push_hosts_count_only_when_listed(
    limited_client: httpx.Client, tenant: Tenant
) -> None:
    for endpoint, status in [
        ("https://127.0.0.1/push", 400),
        ("http://127.0.0.1:9/push", 400),
        ("http://localhost:9/push/ok", 201),
    ]:
        r = limited_client.post("/v1/subscriptions", json=subscription(tenant, endpoint))
        assert r.status_code == status, (endpoint, r.text)


def test_config_uses_the_public_url(limited_client: httpx.Client, tenant: Tenant) -> None:
    config = limited_client.get(f"/sdk/{tenant.partner_id}/config").json()
    assert config["subscribe_url"] == "https://push.example.com/v1/subscriptions"
    assert config["events_url"] == "https://push.example.com/v1/events"
    # The configured public origin is pushcamp's own origin; the request's is not then.
    r = limited_client.get(
        f"/sdk/{tenant.partner_id}/config", headers={"Origin": "https://push.example.com"}
    )
    assert r.headers["access-control-allow-origin"] == "https://push.example.com"


def test_each_address_has_a_budget_per_endpoint(limited_client: httpx.Client) -> None:
    body = {"type": "delivered", "token": "junk"}
    statuses = [limited_client.post("/v1/events", json=body).status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]
    limited = limited_client.post("/v1/events", json=body)
    assert limited.status_code == 429
    assert limited.json() == {"message": "Too Many Requests", "status": 429}
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-limit"] == "5"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    # Another endpoint has a budget of its own.
    assert limited_client.get("/sdk/no-such-partner/config").status_code == 404
