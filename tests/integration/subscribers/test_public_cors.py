"""Per-partner CORS on the public endpoints: a browser on a site the partner did not
declare gets 403 and no CORS header; a declared site, and pushcamp's own pages, get
``Access-Control-Allow-Origin``; server-to-server calls (no Origin) are not concerned."""

from __future__ import annotations

import time

import httpx
import pytest

from pushcamp.domain.event_tokens import sign
from pushcamp.store import Database
from tests.conftest import Tenant, recorded_launch
from tests.integration.subscribers.conftest import (
    events,
    set_site,
    signing_key,
    subscriber,
    subscribers,
    subscription,
)

SHOP = "https://shop.example"
EVIL = "https://evil.example"


@pytest.fixture
def shop(make_tenant, db: Database) -> Tenant:
    tenant: Tenant = make_tenant()
    set_site(db, tenant, SHOP, "http://localhost:3000")
    return tenant


def test_declared_origin_is_allowed_with_cors_headers(
    client: httpx.Client, shop: Tenant, db: Database
) -> None:
    body = subscription(shop)
    r = client.post("/v1/subscriptions", json=body, headers={"Origin": SHOP})
    assert r.status_code == 201
    assert r.headers["access-control-allow-origin"] == SHOP
    assert "Origin" in r.headers["vary"]
    assert "Retry-After" in r.headers["access-control-expose-headers"]
    r = client.post(
        "/v1/subscriptions", json=subscription(shop), headers={"Origin": "http://localhost:3000"}
    )
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_errors_of_an_allowed_origin_are_readable(client: httpx.Client, shop: Tenant) -> None:
    r = client.post(
        "/v1/subscriptions", json=subscription(shop, timezone="Nowhere"), headers={"Origin": SHOP}
    )
    assert r.status_code == 400 and r.headers["access-control-allow-origin"] == SHOP


@pytest.mark.parametrize(
    "origin", [EVIL, "null", "https://shop.example.evil.example", "http://shop.example", "x"]
)
def test_other_origins_are_refused_without_cors_headers(
    client: httpx.Client, shop: Tenant, db: Database, origin: str
) -> None:
    body = subscription(shop)
    r = client.post("/v1/subscriptions", json=body, headers={"Origin": origin})
    assert r.status_code == 403 and r.json() == {"message": "Forbidden"}
    assert "access-control-allow-origin" not in r.headers
    assert subscribers(db, shop.partner_id) == []
    gone = {"partner_id": shop.partner_id, "endpoint": body["endpoint"]}
    r = client.request("DELETE", "/v1/subscriptions", json=gone, headers={"Origin": origin})
    assert r.status_code == 403
    visit = {"type": "visit", **gone}
    assert client.post("/v1/events", json=visit, headers={"Origin": origin}).status_code == 403
    r = client.get(f"/sdk/{shop.partner_id}/config", headers={"Origin": origin})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers


def test_a_partner_without_sites_refuses_every_foreign_origin(
    client: httpx.Client, tenant: Tenant
) -> None:
    r = client.post("/v1/subscriptions", json=subscription(tenant), headers={"Origin": SHOP})
    assert r.status_code == 403


def test_an_unknown_partner_looks_the_same_to_a_foreign_browser(client: httpx.Client) -> None:
    body = {"partner_id": "no-such-partner", "endpoint": "x", "keys": {}}
    r = client.post("/v1/subscriptions", json=body, headers={"Origin": EVIL})
    assert r.status_code == 403


def test_requests_without_origin_are_server_to_server(client: httpx.Client, shop: Tenant) -> None:
    r = client.post("/v1/subscriptions", json=subscription(shop))
    assert r.status_code == 201
    assert "access-control-allow-origin" not in r.headers
    assert "Origin" in r.headers["vary"]


def test_pushcamps_own_origin_is_allowed(client: httpx.Client, tenant: Tenant) -> None:
    # The demo page at /demo/{partner_id} is served by pushcamp itself.
    own = str(client.base_url).rstrip("/")
    r = client.post("/v1/subscriptions", json=subscription(tenant), headers={"Origin": own})
    assert r.status_code == 201 and r.headers["access-control-allow-origin"] == own
    r = client.get(f"/sdk/{tenant.partner_id}/config", headers={"Origin": own})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == own


def test_config_answers_a_declared_origin(client: httpx.Client, shop: Tenant) -> None:
    r = client.get(f"/sdk/{shop.partner_id}/config", headers={"Origin": SHOP})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SHOP


def preflight(
    client: httpx.Client, path: str, origin: str, method: str = "DELETE"
) -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        },
    )


def test_preflight_answers_per_partner(client: httpx.Client, shop: Tenant, make_tenant) -> None:
    r = preflight(client, f"/v1/subscriptions?partner_id={shop.partner_id}", SHOP)
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SHOP
    assert set(r.headers["access-control-allow-methods"].replace(" ", "").split(",")) == {
        "POST",
        "DELETE",
    }
    assert r.headers["access-control-allow-headers"].lower() == "content-type"
    assert int(r.headers["access-control-max-age"]) > 0
    assert "Origin" in r.headers["vary"]
    other = make_tenant()
    for path in (
        f"/v1/subscriptions?partner_id={other.partner_id}",
        "/v1/subscriptions",  # no partner: only pushcamp's own origin would pass
        "/v1/subscriptions?partner_id=no-such-partner",
    ):
        r = preflight(client, path, SHOP)
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers, path
    r = preflight(client, f"/v1/subscriptions?partner_id={shop.partner_id}", EVIL)
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = preflight(client, f"/v1/events?partner_id={shop.partner_id}", SHOP, "POST")
    assert r.status_code == 204 and r.headers["access-control-allow-methods"] == "POST"


def test_events_take_the_partner_from_the_token(
    client: httpx.Client, shop: Tenant, make_tenant, db: Database
) -> None:
    body = subscription(shop)
    client.post("/v1/subscriptions", json=body)
    sub_id = int(subscriber(db, shop.partner_id, body["endpoint"])["id"])
    launch = recorded_launch(db, shop.partner_id)
    token = sign(
        signing_key(db, shop.partner_id), shop.partner_id, launch, sub_id, int(time.time()) + 60
    )
    other = make_tenant()
    set_site(db, other, EVIL)
    # EVIL is a site of another partner, not of the token's.
    r = client.post(
        "/v1/events", json={"type": "delivered", "token": token}, headers={"Origin": EVIL}
    )
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = client.post(
        "/v1/events", json={"type": "delivered", "token": token}, headers={"Origin": SHOP}
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SHOP
    assert len(events(db, shop.partner_id)) == 1
