"""Public URLs never come from an unchecked Host header: PUSHCAMP_PUBLIC_URL when set;
otherwise only the Host names the operator trusts (the listen address, localhost and
PUSHCAMP_ALLOWED_HOSTS), any other gets 400; and a response carrying a URL taken from
the request is never cacheable."""

from __future__ import annotations

import httpx
import pytest

from pushcamp.services import sites
from pushcamp.store import Database
from pushcamp.testing.simulator import PushServiceSimulator
from tests.conftest import Tenant
from tests.integration.hostile.conftest import PUBLIC_URL, LoggedServer
from tests.integration.hostile.rawhttp import address, exchange, request_bytes
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    received_payload,
    wait_for_launches,
)

HOST_REFUSED = {
    "message": "Bad Request",
    "errors": [
        {
            "field": "Host",
            "reason": "not a trusted host name; set PUSHCAMP_PUBLIC_URL or PUSHCAMP_ALLOWED_HOSTS",
        }
    ],
}


def config(server: LoggedServer, partner_id: str, host: str, **headers: str):  # type: ignore[no-untyped-def]
    return exchange(server.url, request_bytes("GET", f"/sdk/{partner_id}/config", host, headers))


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8000",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "user@127.0.0.1",
        "127.0.0.1/path",
        "",
        "[::2]:80",
    ],
)
def test_an_untrusted_host_gets_400_and_no_url(
    guarded: LoggedServer, tenant: Tenant, host: str
) -> None:
    response = config(guarded, tenant.partner_id, host)
    assert response.status == 400
    assert response.json() == HOST_REFUSED
    assert b"evil" not in response.body


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
def test_a_trusted_host_gives_its_urls_uncacheable(
    guarded: LoggedServer, tenant: Tenant, name: str
) -> None:
    port = address(guarded.url)[1]
    response = config(guarded, tenant.partner_id, f"{name}:{port}")
    assert response.status == 200
    body = response.json()
    assert body["subscribe_url"] == f"http://{name}:{port}/v1/subscriptions"
    assert body["events_url"] == f"http://{name}:{port}/v1/events"
    assert response.headers["cache-control"] == "no-store"


def test_allowed_hosts_adds_names(with_allowed_hosts: LoggedServer, tenant: Tenant) -> None:
    for host in ("push.internal", "pushcamp.example.org:8443"):
        response = config(with_allowed_hosts, tenant.partner_id, host)
        assert response.status == 200
        assert response.json()["events_url"] == f"http://{host}/v1/events"
    assert config(with_allowed_hosts, tenant.partner_id, "evil.example").status == 400


def test_with_public_url_the_host_header_is_ignored_and_the_answer_cacheable(
    with_public_url: LoggedServer, tenant: Tenant
) -> None:
    for host in ("evil.example", "127.0.0.1"):
        response = config(with_public_url, tenant.partner_id, host)
        assert response.status == 200
        body = response.json()
        assert body["subscribe_url"] == f"{PUBLIC_URL}/v1/subscriptions"
        assert body["events_url"] == f"{PUBLIC_URL}/v1/events"
        assert response.headers["cache-control"] == "public, max-age=60"


def test_the_own_origin_comes_from_the_public_url_not_the_host(
    with_public_url: LoggedServer, tenant: Tenant
) -> None:
    """CORS: pushcamp's own origin is always allowed; a client naming its own site in
    both Host and Origin is not thereby allowed."""
    evil = config(with_public_url, tenant.partner_id, "evil.example", Origin="http://evil.example")
    assert evil.status == 403
    assert "access-control-allow-origin" not in evil.headers
    own = config(with_public_url, tenant.partner_id, "evil.example", Origin=PUBLIC_URL)
    assert own.status == 200
    assert own.headers["access-control-allow-origin"] == PUBLIC_URL


def test_without_public_url_host_and_origin_cannot_make_an_origin_allowed(
    guarded: LoggedServer, db: Database, tenant: Tenant
) -> None:
    sites.set_site_origins(db, tenant.partner_id, ["https://shop.example"])
    response = config(guarded, tenant.partner_id, "evil.example", Origin="http://evil.example")
    assert response.status in (400, 403)
    assert "access-control-allow-origin" not in response.headers


def test_the_event_url_in_pushed_payloads_never_comes_from_the_launch_requests_host(
    with_public_url: LoggedServer, db: Database, make_tenant
) -> None:  # type: ignore[no-untyped-def]
    """A launch requested with a forged Host: every push's payload still names the
    configured public URL (read back with http_ece, as the browser would)."""
    tenant: Tenant = make_tenant(v1_limit=1000, v2_limit=1000)
    with PushServiceSimulator(seed=11) as sim:
        subs = add_subscribers(db, tenant.partner_id, sim, 2)
        forged = {"Host": "evil.example", **tenant.auth}
        with httpx.Client(base_url=with_public_url.url, timeout=30) as client:
            campaign_id = create_campaign(client, tenant)
            r = client.post(
                f"/v1/single/{campaign_id}",
                headers=forged,
                json=launch_body(tenant.partner_id),
            )
            assert r.status_code == 200, r.text
            [launch] = wait_for_launches(client, tenant, campaign_id)
        assert launch["sent"] == 2
        for sub in subs:
            assert received_payload(sim, sub)["events_url"] == f"{PUBLIC_URL}/v1/events"
