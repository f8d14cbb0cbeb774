"""Documented promises about a launch's outcome, each checked end to end through the real
server, the push-service simulator and, for what arrived, http_ece (a library pushcamp
did not write):

* ``delivered`` and ``clicks`` in ``GET /v1/single/{id}`` count the events the service
  worker reports with the signed tokens of the pushes it received, once each;
* a launch with nobody to send to ends ``Sent``, and so does its campaign;
* a click refreshes a subscriber's engagement, a delivery does not, a site visit does;
* the largest launch pushcamp accepts fits one Web Push message, and one byte more is a
  400 naming the field (contract §4: 4096 bytes on the wire).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import http_ece
import httpx
import pytest
from sqlalchemy import func, select

from pushcamp.store import Database
from pushcamp.store.models import Launch, Subscriber
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import PushServiceSimulator
from pushcamp.webpush import MAX_MESSAGE_SIZE
from tests.conftest import Tenant
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    received_payload,
    wait_for_launches,
)

# The largest plaintext one aes128gcm record of 4096 bytes carries (RFC 8291: an 86-byte
# header with a 65-byte key, a 16-byte tag, one padding delimiter byte).
MAX_PLAINTEXT = 4096 - 86 - 16 - 1


def launch_to(
    client: httpx.Client, tenant: Tenant, **fields: Any
) -> tuple[int, list[dict[str, Any]]]:
    campaign_id = create_campaign(client, tenant, is_all=True)
    r = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, **fields),
        headers=tenant.auth,
    )
    assert r.status_code == 200, r.text
    return campaign_id, wait_for_launches(client, tenant, campaign_id)


def counters(client: httpx.Client, tenant: Tenant, campaign_id: int) -> tuple[int, int]:
    r = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth)
    assert r.status_code == 200, r.text
    (launch,) = r.json()["launches"]
    return launch["delivered"], launch["clicks"]


def report(payload: dict[str, Any], kind: str) -> httpx.Response:
    """What the service worker does: POST the event with the payload's own token to the
    payload's own events URL."""
    return httpx.post(payload["events_url"], json={"type": kind, "token": payload["token"]})


def engaged_at(db: Database, endpoint: str) -> datetime | None:
    with db.read() as conn:
        value = conn.execute(
            select(Subscriber.last_engaged_at).where(Subscriber.endpoint == endpoint)
        ).scalar_one()
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # SQLite hands times back without a zone
    return value


def test_delivered_and_clicks_count_the_events_reported_with_the_pushed_tokens(
    client: httpx.Client,
    server: ServerProcess,
    tenant: Tenant,
    db: Database,
    sim: PushServiceSimulator,
) -> None:
    subs = add_subscribers(db, tenant.partner_id, sim, 3)
    campaign_id, launches = launch_to(client, tenant)
    assert [(launch["status"], launch["sent"]) for launch in launches] == [("Sent", 3)]
    assert counters(client, tenant, campaign_id) == (0, 0)
    payloads = [received_payload(sim, sub) for sub in subs]
    assert all(p["events_url"] == f"{server.url}/v1/events" for p in payloads)

    for payload in payloads:
        assert report(payload, "delivered").status_code == 200
    assert report(payloads[0], "clicked").status_code == 200
    assert counters(client, tenant, campaign_id) == (3, 1)

    # A replay is refused and counted nowhere.
    again = [report(payloads[0], "delivered"), report(payloads[0], "clicked")]
    assert [r.status_code for r in again] == [400, 400]
    assert counters(client, tenant, campaign_id) == (3, 1)
    # Another push's token counts for its own subscriber.
    assert report(payloads[1], "clicked").status_code == 200
    assert counters(client, tenant, campaign_id) == (3, 2)


def test_a_click_refreshes_engagement_a_delivery_does_not_a_visit_does(
    client: httpx.Client, tenant: Tenant, db: Database, sim: PushServiceSimulator
) -> None:
    clicked, visited = add_subscribers(db, tenant.partner_id, sim, 2, engaged=False)
    before = {s.endpoint: engaged_at(db, s.endpoint) for s in (clicked, visited)}
    assert all(value is not None for value in before.values())
    _, launches = launch_to(client, tenant, include_unengaged=True)
    assert launches[0]["sent"] == 2
    payload = received_payload(sim, clicked)

    assert report(payload, "delivered").status_code == 200
    assert engaged_at(db, clicked.endpoint) == before[clicked.endpoint]
    assert report(payload, "closed").status_code == 200
    assert engaged_at(db, clicked.endpoint) == before[clicked.endpoint]

    start = datetime.now(UTC)
    assert report(payload, "clicked").status_code == 200
    refreshed = engaged_at(db, clicked.endpoint)
    assert refreshed is not None and refreshed >= start.replace(microsecond=0)
    assert engaged_at(db, visited.endpoint) == before[visited.endpoint]

    visit = {"type": "visit", "partner_id": tenant.partner_id, "endpoint": visited.endpoint}
    assert client.post("/v1/events", json=visit).status_code == 200
    after_visit = engaged_at(db, visited.endpoint)
    assert after_visit is not None and after_visit >= start.replace(microsecond=0)


def test_a_launch_to_a_partner_without_subscribers_ends_sent(
    client: httpx.Client, tenant: Tenant, sim: PushServiceSimulator
) -> None:
    campaign_id, launches = launch_to(client, tenant)
    assert [(x["status"], x["targeted"], x["sent"], x["dropped"]) for x in launches] == [
        ("Sent", 0, 0, 0)
    ]
    assert launches[0]["finished_at"] is not None
    status = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()
    assert status["status"] == "Sent"


@pytest.mark.parametrize(
    "campaign_language, launch_fields",
    [
        ("all_ALL", {"target": {"attribute": "tier", "values": ["nobody"]}}),
        ("tr_TR", {"target": {"attribute": "tier", "values": ["gold"]}}),
        ("all_ALL", {"target": {"attribute": "tier", "values": ["gold"]}, "language": "fr_FR"}),
    ],
    ids=["target", "campaign-language", "launch-language"],
)
def test_a_launch_whose_filter_matches_nobody_ends_sent(
    client: httpx.Client,
    tenant: Tenant,
    db: Database,
    sim: PushServiceSimulator,
    campaign_language: str,
    launch_fields: dict[str, Any],
) -> None:
    subs = add_subscribers(
        db, tenant.partner_id, sim, 3, language="en_US", attributes={"tier": "gold"}
    )
    campaign_id = create_campaign(client, tenant, is_all=False, language=campaign_language)
    r = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, **launch_fields),
        headers=tenant.auth,
    )
    assert r.status_code == 200, r.text
    launches = wait_for_launches(client, tenant, campaign_id)
    assert [(x["status"], x["targeted"], x["sent"]) for x in launches] == [("Sent", 0, 0)]
    status = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()
    assert status["status"] == "Sent"
    assert all(sim.messages(s) == [] for s in subs)


# --- the size limit -----------------------------------------------------------------------

NOBODY = {"target": {"attribute": "tier", "values": ["nobody"]}}
# Long multi-byte texts and an icon URL, so that the link is the field taking the most
# room and the boundary falls inside the link's own 2048-character limit.
BIG = {
    "title": "🎉" * 100,
    "description": "ü" * 255,
    "image": "https://cdn.pushcamp.dev/" + "i" * 1000,
}


def link_of(length: int) -> str:
    base = "https://shop.pushcamp.dev/"
    return base + "a" * (length - len(base))


def launches_of(db: Database, campaign_id: int) -> int:
    with db.read() as conn:
        return conn.execute(
            select(func.count()).select_from(Launch).where(Launch.campaign_id == campaign_id)
        ).scalar_one()


def test_the_largest_accepted_launch_is_delivered_and_one_byte_more_is_400(
    client: httpx.Client, tenant: Tenant, db: Database, sim: PushServiceSimulator
) -> None:
    (sub,) = add_subscribers(db, tenant.partner_id, sim, 1, attributes={"tier": "gold"})
    campaign_id = create_campaign(client, tenant, is_all=False)
    url = f"/v1/single/{campaign_id}"

    def accepted(length: int, **fields: Any) -> httpx.Response:
        body = launch_body(tenant.partner_id, **BIG, link=link_of(length), **fields)
        return client.post(url, json=body, headers=tenant.auth)

    # Bisection through the API, with a target that matches nobody (each accepted probe
    # is a launch to nobody): the longest link that is still accepted.
    lo, hi = 100, 2048
    assert accepted(lo, **NOBODY).status_code == 200
    assert accepted(hi, **NOBODY).status_code == 400
    while hi - lo > 1:
        mid = (lo + hi) // 2
        code = accepted(mid, **NOBODY).status_code
        assert code in (200, 400)
        lo, hi = (mid, hi) if code == 200 else (lo, mid)
    boundary = lo

    # One byte more: refused before anything is recorded, naming the link.
    recorded = launches_of(db, campaign_id)
    over = accepted(boundary + 1, target={"attribute": "tier", "values": ["gold"]})
    assert over.status_code == 400, over.text
    assert [e["field"] for e in over.json()["errors"]] == ["link"]
    assert launches_of(db, campaign_id) == recorded
    assert sim.messages(sub) == []

    # At the boundary: recorded, sent, accepted by the push service (201), and whole.
    accepted_before = sim.stats()["accepted"]
    at = accepted(boundary, target={"attribute": "tier", "values": ["gold"]})
    assert at.status_code == 200, at.text
    launches = wait_for_launches(client, tenant, campaign_id, count=recorded + 1)
    newest = max(launches, key=lambda x: x["launch_id"])
    assert (newest["status"], newest["sent"], newest["dropped"]) == ("Sent", 1, 0)
    (message,) = sim.messages(sub)
    assert message.size <= MAX_MESSAGE_SIZE == 4096
    plain = http_ece.decrypt(
        message.body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
    )
    assert len(plain) <= MAX_PLAINTEXT
    payload = json.loads(plain)
    assert (payload["title"], payload["body"], payload["icon"], payload["url"]) == (
        BIG["title"],
        BIG["description"],
        BIG["image"],
        link_of(boundary),
    )
    assert sim.stats()["accepted"] == accepted_before + 1
