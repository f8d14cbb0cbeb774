"""Statistics against known outcomes (contract §2.4, §2.5): a launch whose every
subscriber's fate is arranged — sent and reported delivered, clicked and converted by
real signed tokens the simulator received; gone; refused past the retry bound; held by
silent hours; over the frequency cap — and every count and rate of the three statistics
endpoints and of the campaign status asserted exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import insert, select, update

from pushcamp.store import Database
from pushcamp.store.models import Delivery, Partner, Subscriber
from pushcamp.testing.simulator import Fault, PushServiceSimulator, SimulatedSubscription
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    wait_for_launches,
)

TODAY = datetime.now(UTC).date().isoformat()


def token_of(sim: PushServiceSimulator, sub: SimulatedSubscription) -> str:
    [message] = sim.messages(sub)
    return str(json.loads(message.text)["token"])


def event(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/v1/events", json=body)


def stats(client: httpx.Client, tenant: Any, which: str, **body: Any) -> httpx.Response:
    body = {"start_date": TODAY, "end_date": TODAY, **body}
    return client.post(f"/v1/statistics/{which}", json=tenant.body(**body), headers=tenant.auth)


def subscriber_ids(db: Database, subs: list[SimulatedSubscription]) -> list[int]:
    with db.read() as conn:
        return list(
            conn.execute(
                select(Subscriber.id).where(Subscriber.endpoint.in_([s.endpoint for s in subs]))
            ).scalars()
        )


@pytest.fixture(scope="module")
def known(server: Any, db: Database, sim: PushServiceSimulator, request: Any) -> dict[str, Any]:
    """One bulk launch with every outcome arranged, then one segment launch."""
    from tests.conftest import Tenant

    tenant = Tenant(db, v1_limit=10_000)
    pid = tenant.partner_id
    now = datetime.now(UTC)
    tokyo = now.astimezone(ZoneInfo("Asia/Tokyo"))
    minutes = tokyo.hour * 60 + tokyo.minute
    with db.write() as conn:
        conn.execute(
            update(Partner)
            .where(Partner.id == pid)
            .values(
                frequency_cap=1,
                silent_start=(minutes - 60) % 1440,
                silent_end=(minutes + 60) % 1440,
                currency="EUR",
            )
        )
    desktop = add_subscribers(db, pid, sim, 6, device="desktop")
    mobile = add_subscribers(db, pid, sim, 4, device="mobile")
    gone = add_subscribers(db, pid, sim, 2, device="desktop")
    limited = add_subscribers(db, pid, sim, 1, device="mobile")
    add_subscribers(db, pid, sim, 2, device="tablet", timezone="Asia/Tokyo")
    capped = add_subscribers(db, pid, sim, 2, device="desktop")
    for sub in gone:
        sim.unsubscribe(sub)
    for sub in limited:
        sim.inject(sub, Fault.too_many_requests(retry_after=0), times=10)
    # Each capped subscriber was pushed an hour ago by another launch: over a cap of 1.
    with db.write() as conn:
        conn.execute(
            insert(Delivery),
            [
                {
                    "launch_id": 10**12,
                    "subscriber_id": sid,
                    "partner_id": pid,
                    "state": "sent",
                    "created_at": now - timedelta(hours=1),
                }
                for sid in subscriber_ids(db, capped)
            ],
        )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        campaign_id = create_campaign(client, tenant, is_all=True)
        answer = client.post(
            f"/v1/single/{campaign_id}", json=launch_body(pid), headers=tenant.auth
        )
        assert answer.status_code == 200, answer.text
        [launch] = wait_for_launches(client, tenant, campaign_id)
        assert launch["status"] == "Sent", launch
        # The service worker's reports, with the tokens the simulator decrypted.
        for sub in desktop + mobile[:3]:
            assert event(client, type="delivered", token=token_of(sim, sub)).status_code == 200
        clickers = [desktop[0], desktop[1], mobile[0]]
        for sub in clickers:
            assert event(client, type="clicked", token=token_of(sim, sub)).status_code == 200
        bought = event(
            client,
            type="conversion",
            token=token_of(sim, desktop[0]),
            value=19.99,
            currency="EUR",
            order_id="order-1",
        )
        assert bought.status_code == 200, bought.text
        assert (
            event(
                client, type="conversion", token=token_of(sim, mobile[0]), value=5, currency="EUR"
            ).status_code
            == 200
        )
        segment_id = create_campaign(client, tenant, is_all=False)
        tablets = launch_body(pid, target={"attribute": "d_wp_device", "values": ["tablet"]})
        assert (
            client.post(f"/v1/single/{segment_id}", json=tablets, headers=tenant.auth).status_code
            == 200
        )
        wait_for_launches(client, tenant, segment_id)
    return {
        "tenant": tenant,
        "campaign_id": campaign_id,
        "segment_id": segment_id,
        "launch_id": launch["launch_id"],
        "desktop": desktop,
        "mobile": mobile,
        "clickers": clickers,
    }


def test_campaign_metrics_match_every_known_outcome(client: httpx.Client, known: dict) -> None:
    tenant = known["tenant"]
    answer = stats(client, tenant, "campaign-metrics", campaign_id=str(known["campaign_id"]))
    assert answer.status_code == 200, answer.text
    assert answer.headers["ratelimit-policy"].startswith('"statistics"')
    body = answer.json()
    assert body["name"].startswith("c ")
    assert body["startDate"] == f"{TODAY}T00:00:00.000000Z"
    assert body["endDate"] == f"{TODAY}T23:59:59.999999Z"
    assert (body["isRecurring"], body["alias"], body["preferredCurrency"]) == (
        False,
        "bulk",
        "EUR",
    )
    assert body["isTTLEnded"] is False  # TTL 3600 s: offline browsers may still get it
    assert body["overview"] == {
        "total": {
            "targeted": "17",
            "deliveryRate": "90.00%",
            "ctr": "33.33%",
            "conversionRate": "66.67%",
        },
        "targeted": {"sent": "10", "dropped": "7"},
        "deliveryRate": {"delivered": "9", "undelivered": "1"},
        "ctr": {"clicks": "3"},
        "conversionRate": {"conversions": "2"},
        "revenue": "25 EUR",
    }
    assert body["deviceMetrics"] == [
        {
            "device": "Desktop",
            "sent": "6",
            "delivered": "6",
            "deliveryRate": "100.00%",
            "clicks": "2",
            "ctr": "33.33%",
            "conversions": "1",
            "conversionRate": "50.00%",
            "revenue": "20 EUR",
        },
        {
            "device": "Mobile",
            "sent": "4",
            "delivered": "3",
            "deliveryRate": "75.00%",
            "clicks": "1",
            "ctr": "33.33%",
            "conversions": "1",
            "conversionRate": "100.00%",
            "revenue": "5 EUR",
        },
    ]
    assert body["clickMetrics"][0] == {
        "name": "mainAction",
        "header": "Main Element",
        "clicks": "3",
        "clickRatio": "100.00%",
    }
    assert body["unsuccessfulMessages"] == {
        "dropped": [
            {"label": "frequencyCapped", "count": "2", "percentage": "28.57"},
            {"label": "silentHours", "count": "2", "percentage": "28.57"},
            {"label": "unsubscriptions", "count": "2", "percentage": "28.57"},
            {"label": "serviceProviderErrors", "count": "1", "percentage": "14.29"},
            {"label": "internalErrors", "count": "0", "percentage": "0.00"},
        ],
        "undelivered": [
            {"label": "offlineRecipients", "count": "1", "percentage": "100.00"},
            {"label": "ttlExpired", "count": "0", "percentage": "0.00"},
        ],
    }


def test_campaign_status_agrees_with_the_statistics(client: httpx.Client, known: dict) -> None:
    tenant = known["tenant"]
    status = client.get(f"/v1/single/{known['campaign_id']}", headers=tenant.auth).json()
    [launch] = status["launches"]
    assert {k: launch[k] for k in ("targeted", "sent", "dropped", "delivered", "clicks")} == {
        "targeted": 17,
        "sent": 10,
        "dropped": 7,
        "delivered": 9,
        "clicks": 3,
    }


def test_overall_metrics_pages_the_partners_campaigns(client: httpx.Client, known: dict) -> None:
    tenant = known["tenant"]
    first = stats(client, tenant, "overall-metrics", page="1", per_page="1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["page"], body["per_page"], body["total"]) == (1, 1, 2)
    [segment] = body["data"]
    assert segment["id"] == known["segment_id"] and segment["type"] == "Segment"
    assert (segment["targeted"], segment["sent"], segment["dropped"]) == (2, 0, 2)
    second = stats(client, tenant, "overall-metrics", page=2, per_page=1).json()
    [bulk] = second["data"]
    assert bulk["id"] == known["campaign_id"]
    expected = {
        "type": "Bulk",
        "status": "Sent",
        "targeted": 17,
        "sent": 10,
        "dropped": 7,
        "delivered": 9,
        "undelivered": 1,
        "deliveryRate": 0.9,
        "clicks": 3,
        "ctr": 3 / 9,
        "conversions": 2,
        "conversionRate": 2 / 3,
        "revenue": 24.99,
    }
    assert {k: bulk[k] for k in expected} == expected
    for key in ("sendDate", "startDate", "endDate"):
        assert datetime.strptime(bulk[key], "%Y-%m-%d %H:%M:%S").date().isoformat() == TODAY
    assert stats(client, tenant, "overall-metrics", page=3, per_page=1).json()["data"] == []


def test_top_metrics_sum_the_partner_by_campaign_type(client: httpx.Client, known: dict) -> None:
    body = stats(client, known["tenant"], "top-metrics").json()
    assert body["overview"]["total"] == {
        "targeted": "19",
        "deliveryRate": "90.00%",
        "ctr": "33.33%",
        "conversionRate": "66.67%",
    }
    assert body["overview"]["targeted"] == {"sent": "10", "dropped": "9"}
    assert body["overview"]["revenue"] == "25 EUR"
    assert body["performance"] == [
        {
            "label": "Bulk",
            "campaignCount": 1,
            "deliveryRate": "90.00",
            "ctr": "33.33",
            "conversionRate": "66.67",
            "revenue": "24.99",
        },
        {
            "label": "Segment",
            "campaignCount": 1,
            "deliveryRate": "0.00",
            "ctr": "0.00",
            "conversionRate": "0.00",
            "revenue": "0",
        },
    ]
    assert [(d["label"], d["count"]) for d in body["dropped"]] == [
        ("frequencyCapped", "2"),
        ("silentHours", "4"),
        ("unsubscriptions", "2"),
        ("serviceProviderErrors", "1"),
        ("internalErrors", "0"),
    ]


def test_a_range_without_activity_counts_nothing(client: httpx.Client, known: dict) -> None:
    tenant = known["tenant"]
    day = "2020-01-01"
    campaign = stats(
        client,
        tenant,
        "campaign-metrics",
        campaign_id=known["campaign_id"],
        start_date=day,
        end_date=day,
    ).json()
    assert campaign["overview"]["total"]["targeted"] == "0"
    assert campaign["deviceMetrics"] == []
    overall = stats(client, tenant, "overall-metrics", start_date=day, end_date=day).json()
    assert (overall["total"], overall["data"]) == (0, [])


def test_conversions_are_refused_unless_attributable(
    client: httpx.Client, known: dict, db: Database, sim: PushServiceSimulator
) -> None:
    """Nothing below is counted: the two conversions of the fixture stay the only ones."""
    tenant = known["tenant"]
    clicked, bought = known["clickers"][1], known["clickers"][0]
    not_clicked = known["desktop"][2]

    def convert(sub: SimulatedSubscription, **fields: Any) -> httpx.Response:
        body = {"type": "conversion", "token": token_of(sim, sub), "value": 10, "currency": "EUR"}
        return event(client, **(body | fields))

    refused = [
        convert(bought, order_id="order-1"),  # the same order again
        convert(known["mobile"][0]),  # a second one without order id
        convert(not_clicked),  # no click
        convert(clicked, currency="USD"),  # not the partner's currency
        convert(clicked, value=-1),
        convert(clicked, value="10"),
        convert(clicked, order_id="x" * 65),
        convert(clicked, token=token_of(sim, clicked)[:-2] + "AA"),  # forged
    ]
    for answer in refused:
        assert answer.status_code == 400, answer.text
    # A click older than the attribution window (24 h by default) no longer converts.
    with db.write() as conn:
        from pushcamp.store.models import Event

        conn.execute(
            update(Event)
            .where(Event.type == "clicked", Event.partner_id == tenant.partner_id)
            .where(Event.subscriber_id.in_(subscriber_ids(db, [clicked])))
            .values(created_at=datetime.now(UTC) - timedelta(hours=25))
        )
    assert convert(clicked).status_code == 400
    body = stats(client, tenant, "campaign-metrics", campaign_id=known["campaign_id"]).json()
    assert body["overview"]["conversionRate"]["conversions"] == "2"
    assert body["overview"]["revenue"] == "25 EUR"


@pytest.mark.parametrize(
    "body",
    [
        {"start_date": "2023-6-01"},
        {"start_date": "20230601"},
        {"end_date": "2023-02-30"},
        {"start_date": "2023-06-09", "end_date": "2023-06-08"},
        {"start_date": 20230601},
        {"campaign_id": "12a"},
        {"campaign_id": True},
        {"campaign_id": 0},
        {"campaign_id": 1.5},
    ],
)
def test_malformed_statistics_requests_get_400(client: httpx.Client, tenant, body: dict) -> None:
    base = {"start_date": "2023-06-01", "end_date": "2023-06-08", "campaign_id": 1}
    answer = client.post(
        "/v1/statistics/campaign-metrics",
        json=tenant.body(**(base | body)),
        headers=tenant.auth,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"] == "Bad Request"


@pytest.mark.parametrize("page", [{"page": "0"}, {"per_page": "101"}, {"page": "x"}, {"page": -1}])
def test_bad_pages_get_400(client: httpx.Client, tenant, page: dict) -> None:
    answer = stats(client, tenant, "overall-metrics", **page)
    assert answer.status_code == 400, answer.text


def test_another_partners_campaign_looks_unknown(
    client: httpx.Client, known: dict, make_tenant
) -> None:
    other = make_tenant(v1_limit=1000)
    theirs = stats(client, other, "campaign-metrics", campaign_id=known["campaign_id"])
    unknown = stats(client, other, "campaign-metrics", campaign_id=10**15)
    assert theirs.status_code == unknown.status_code == 400
    assert theirs.json() == unknown.json()
    assert stats(client, other, "top-metrics").json()["overview"]["total"]["targeted"] == "0"
    wrong_partner = client.post(
        "/v1/statistics/top-metrics",
        json=known["tenant"].body(start_date=TODAY, end_date=TODAY),
        headers=other.auth,
    )
    assert wrong_partner.status_code == 401


def test_top_metrics_split_undelivered_per_launch_by_ttl(
    client: httpx.Client, db: Database, make_tenant
) -> None:
    """top-metrics works the undelivered split out per launch: a send is expired once
    its minute and its own launch's TTL are over, and a launch whose delivered reports
    fall in the range but whose sends do not adds nothing (it cannot make up for another
    launch's undelivered). Records written directly, counters rebuilt from them."""
    from pushcamp.store.models import Campaign, Event, Launch
    from pushcamp.store.statistics import recount_launch

    tenant = make_tenant(v1_limit=1000)
    pid = tenant.partner_id
    today = datetime.now(UTC).date()
    day = datetime.combine(today - timedelta(days=2), datetime.min.time(), tzinfo=UTC)
    sent_at = day + timedelta(hours=12)
    four_weeks = 28 * 24 * 3600
    # (campaign, is_all, ttl, sent at, sent, dropped, delivered at, delivered)
    plan = [
        ("bulk", True, 60, sent_at, 10, 2, sent_at + timedelta(minutes=5), 3),
        ("live", False, four_weeks, sent_at, 6, 0, sent_at + timedelta(minutes=5), 1),
        ("live", False, 60, sent_at, 2, 0, sent_at, 0),
        ("late", False, 60, day - timedelta(days=5), 4, 0, sent_at + timedelta(hours=1), 3),
    ]
    campaigns: dict[str, int] = {}
    with db.write() as conn:
        for name, is_all, ttl, at, sent, dropped, delivered_at, delivered in plan:
            if name not in campaigns:
                campaigns[name] = conn.execute(
                    insert(Campaign)
                    .values(
                        partner_id=pid,
                        title=name,
                        language="all_ALL",
                        is_all=is_all,
                        status="Sent",
                        created_at=at,
                        updated_at=at,
                    )
                    .returning(Campaign.id)
                ).scalar_one()
            launch_id = conn.execute(
                insert(Launch)
                .values(
                    partner_id=pid,
                    campaign_id=campaigns[name],
                    status="Sent",
                    request={"ttl": ttl, "title": name},
                    topic="-",
                    created_at=at,
                    started_at=at,
                    finished_at=at,
                )
                .returning(Launch.id)
            ).scalar_one()
            records = [
                {
                    "launch_id": launch_id,
                    "subscriber_id": i,
                    "partner_id": pid,
                    "state": "sent" if i <= sent else "dropped",
                    "reason": None if i <= sent else "unsubscriptions",
                    "created_at": at,
                }
                for i in range(1, sent + dropped + 1)
            ]
            conn.execute(insert(Delivery), records)
            if delivered:
                conn.execute(
                    insert(Event),
                    [
                        {
                            "partner_id": pid,
                            "launch_id": launch_id,
                            "subscriber_id": i,
                            "type": "delivered",
                            "created_at": delivered_at,
                        }
                        for i in range(1, delivered + 1)
                    ],
                )
            recount_launch(conn, launch_id)
    days = {"start_date": (day - timedelta(days=1)).date().isoformat(), "end_date": TODAY}
    top = stats(client, tenant, "top-metrics", **days)
    assert top.status_code == 200, top.text
    body = top.json()
    # bulk: 10 sent, 3 delivered, 7 undelivered, TTL over. live: 6 sent, 1 delivered,
    # 5 undelivered with four weeks of TTL left; plus 2 sent, TTL over. late: its 3
    # delivered reports are in the range, its 4 sends are not: 0 undelivered, not -3.
    assert body["overview"]["targeted"] == {"sent": "18", "dropped": "2"}
    assert body["overview"]["deliveryRate"] == {"delivered": "7", "undelivered": "14"}
    assert body["undelivered"] == [
        {"label": "offlineRecipients", "count": "5", "percentage": "35.71"},
        {"label": "ttlExpired", "count": "9", "percentage": "64.29"},
    ]
    assert [(p["label"], p["campaignCount"], p["deliveryRate"]) for p in body["performance"]] == [
        ("Bulk", 1, "30.00"),
        ("Segment", 2, "50.00"),
    ]
    # The same split as the campaigns' own answers, summed.
    per_campaign = [
        stats(client, tenant, "campaign-metrics", campaign_id=cid, **days).json()
        for cid in campaigns.values()
    ]
    for i, label in enumerate(("offlineRecipients", "ttlExpired")):
        assert sum(
            int(c["unsuccessfulMessages"]["undelivered"][i]["count"]) for c in per_campaign
        ) == int(body["undelivered"][i]["count"]), label
