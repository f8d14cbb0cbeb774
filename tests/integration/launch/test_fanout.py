"""Launch and fan-out against the real server and a real push-service simulator: every
subscriber exactly once, the audience filters, the push service's answers (§4), and the
campaign semantics of §2.2/§2.3/§2.5."""

from __future__ import annotations

import json
import threading
import time

import httpx
from sqlalchemy import func, select, update

from pushcamp.domain.event_tokens import verify
from pushcamp.domain.launches import topic_for
from pushcamp.store import Database
from pushcamp.store.models import Delivery, Partner, Subscriber
from pushcamp.testing.simulator import Fault, PushServiceSimulator
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    wait_for_launches,
)


def deliveries(db: Database, launch_id: int) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(
            select(Delivery.state, Delivery.reason, func.count())
            .where(Delivery.launch_id == launch_id)
            .group_by(Delivery.state, Delivery.reason)
        ).all()
    return {f"{state}:{reason or ''}": n for state, reason, n in rows}


def update_subscribers(db: Database, partner_id: str, **values: object) -> None:
    """Set columns on all of the partner's subscribers (what a test's audience needs)."""
    with db.write() as conn:
        conn.execute(update(Subscriber).where(Subscriber.partner_id == partner_id).values(**values))


def update_partner(db: Database, partner_id: str, **values: object) -> None:
    with db.write() as conn:
        conn.execute(update(Partner).where(Partner.id == partner_id).values(**values))


def test_every_subscriber_gets_exactly_one_encrypted_push(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator
) -> None:
    subs = add_subscribers(db, tenant.partner_id, sim, 120)
    campaign_id = create_campaign(client, tenant)
    started = time.perf_counter()
    answer = client.post(
        f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"success": True, "campaign_id": campaign_id}
    assert time.perf_counter() - started < 2  # the answer does not wait for the audience
    [launch] = wait_for_launches(client, tenant, campaign_id)
    assert launch["status"] == "Sent"
    assert (launch["targeted"], launch["sent"], launch["dropped"]) == (120, 120, 0)
    assert launch["started_at"] and launch["finished_at"]
    with db.read() as conn:
        key = conn.execute(
            select(Partner.signing_key).where(Partner.id == tenant.partner_id)
        ).scalar_one()
    for sub in subs:
        [message] = sim.messages(sub)
        payload = json.loads(message.text)
        assert payload["title"] == "Hello" and payload["body"] == "A notification"
        assert payload["url"] == "https://shop.pushcamp.dev/sale"
        assert message.topic == topic_for(launch["launch_id"])
        assert message.ttl == 3600
        claim = verify(key, payload["token"], int(time.time()))
        assert claim.launch_id == launch["launch_id"] and claim.partner_id == tenant.partner_id
    assert deliveries(db, launch["launch_id"]) == {"sent:": 120}
    status = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()
    assert status["status"] == "Sent"


def test_is_all_campaign_launches_once_even_when_racing(
    client: httpx.Client, server, tenant, db: Database, sim: PushServiceSimulator
) -> None:
    add_subscribers(db, tenant.partner_id, sim, 5)
    campaign_id = create_campaign(client, tenant, is_all=True)
    codes: list[int] = []
    barrier = threading.Barrier(10)

    def launch() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            barrier.wait()
            r = c.post(
                f"/v1/single/{campaign_id}",
                json=launch_body(tenant.partner_id),
                headers=tenant.auth,
            )
            codes.append(r.status_code)

    threads = [threading.Thread(target=launch) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [400] * 9
    launches = wait_for_launches(client, tenant, campaign_id)
    assert len(launches) == 1 and launches[0]["sent"] == 5
    again = client.post(
        f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
    )
    assert again.status_code == 400 and again.json()["message"] == "Bad Request"


def test_segmented_campaign_launches_many_times_to_its_target(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator
) -> None:
    firefox = add_subscribers(
        db, tenant.partner_id, sim, 4, browser="Firefox", attributes={"tier": "gold"}
    )
    chrome = add_subscribers(
        db, tenant.partner_id, sim, 6, browser="Chrome", attributes={"tier": "basic"}
    )
    campaign_id = create_campaign(client, tenant, is_all=False)
    missing = client.post(
        f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
    )
    assert missing.status_code == 400
    assert "target" in {e["field"] for e in missing.json()["errors"]}
    by_browser = launch_body(
        tenant.partner_id, target={"attribute": "d_wp_browser", "values": ["Firefox"]}
    )
    assert (
        client.post(f"/v1/single/{campaign_id}", json=by_browser, headers=tenant.auth).status_code
        == 200
    )
    wait_for_launches(client, tenant, campaign_id, count=1)
    by_tier = launch_body(tenant.partner_id, target={"attribute": "tier", "values": ["basic"]})
    assert (
        client.post(f"/v2/single/{campaign_id}", json=by_tier, headers=tenant.auth).status_code
        == 200
    )
    first, second = wait_for_launches(client, tenant, campaign_id, count=2)
    assert first["sent"] == 4 and second["sent"] == 6
    assert all(len(sim.messages(s)) == 1 for s in firefox + chrome)


def test_language_and_engagement_filters(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator
) -> None:
    turkish = add_subscribers(db, tenant.partner_id, sim, 3, language="tr_TR")
    english = add_subscribers(db, tenant.partner_id, sim, 2, language="en_US")
    dormant = add_subscribers(db, tenant.partner_id, sim, 2, language="tr_TR", engaged=False)
    campaign_id = create_campaign(client, tenant, is_all=False, language="tr_TR")
    body = launch_body(
        tenant.partner_id, language="tr_TR", target={"attribute": "d_wp_browser", "values": ["x"]}
    )
    assert (
        client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth).status_code == 200
    )
    [launch] = wait_for_launches(client, tenant, campaign_id)
    assert launch["targeted"] == 0  # nobody has that browser
    update_subscribers(db, tenant.partner_id, browser="Chrome")
    body["target"] = {"attribute": "d_wp_browser", "values": ["Chrome"]}
    assert (
        client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth).status_code == 200
    )
    launches = wait_for_launches(client, tenant, campaign_id, count=2)
    assert launches[1]["sent"] == 3  # Turkish and engaged only
    assert all(len(sim.messages(s)) == 1 for s in turkish)
    assert all(not sim.messages(s) for s in english + dormant)
    body["include_unengage"] = True  # the published misspelling
    assert (
        client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth).status_code == 200
    )
    launches = wait_for_launches(client, tenant, campaign_id, count=3)
    assert launches[2]["sent"] == 5
    assert all(len(sim.messages(s)) == 1 for s in dormant)


def test_push_service_answers_gone_too_large_and_errors(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator
) -> None:
    subs = add_subscribers(db, tenant.partner_id, sim, 8)
    gone, not_found, large, busy, broken = subs[:5]
    sim.inject(gone, Fault.gone())
    sim.inject(not_found, Fault.not_found())
    sim.inject(large, Fault.too_large())
    sim.inject(busy, Fault.too_many_requests(retry_after=1))  # once: the retry succeeds
    sim.inject(broken, Fault(status=500, body="boom"), times=10)  # every try fails
    campaign_id = create_campaign(client, tenant, is_all=False)
    body = launch_body(
        tenant.partner_id, target={"attribute": "d_wp_device", "values": ["desktop"]}
    )
    update_subscribers(db, tenant.partner_id, device="desktop")
    assert (
        client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth).status_code == 200
    )
    [launch] = wait_for_launches(client, tenant, campaign_id, timeout=90)
    counts = deliveries(db, launch["launch_id"])
    assert counts == {
        "sent:": 4,  # three healthy ones and the one that was asked to retry later
        "dropped:unsubscriptions": 2,
        "dropped:payloadTooLarge": 1,
        "dropped:serviceProviderErrors": 1,
    }
    assert sim.attempts(busy) == 2 and len(sim.messages(busy)) == 1
    with db.read() as conn:
        inactive = conn.execute(
            select(Subscriber.endpoint, Subscriber.deactivated_reason).where(
                Subscriber.partner_id == tenant.partner_id, Subscriber.active.is_(False)
            )
        ).all()
    assert {e for e, _ in inactive} == {gone.endpoint, not_found.endpoint}
    assert {r for _, r in inactive} == {"gone"}
    # Deactivated for good: the next launch does not try them again.
    assert (
        client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth).status_code == 200
    )
    second = wait_for_launches(client, tenant, campaign_id, count=2, timeout=90)[1]
    assert second["targeted"] == 6
    assert sim.attempts(gone) == 1 and sim.attempts(not_found) == 1


def test_delete_stops_a_running_launch_and_frees_the_title(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator
) -> None:
    subs = add_subscribers(db, tenant.partner_id, sim, 400)
    for sub in subs:
        sim.inject(sub, Fault(delay=1.5))
    title = "stoppable"
    created = client.post(
        "/v1/single",
        json=tenant.body(title=title, language="all_ALL", is_all=True),
        headers=tenant.auth,
    )
    campaign_id = created.json()["campaign_id"]
    assert (
        client.post(
            f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
        ).status_code
        == 200
    )
    time.sleep(0.5)
    deleted = client.request(
        "DELETE", f"/v1/single/{campaign_id}", json=tenant.body(), headers=tenant.auth
    )
    assert deleted.status_code == 200
    time.sleep(2.0)
    requests_after_stop = sum(sim.attempts(s) for s in subs)
    time.sleep(1.5)
    assert sum(sim.attempts(s) for s in subs) == requests_after_stop  # nothing more goes out
    assert requests_after_stop <= 250  # the first wave (200 in flight per host), not all
    status = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()
    assert status["status"] == "Deleted" and status["launches"][0]["status"] == "Stopped"
    again = client.post(
        "/v1/single", json=tenant.body(title=title, language="all_ALL"), headers=tenant.auth
    )
    assert again.status_code == 201


def test_frequency_cap_and_silent_hours_drop_with_their_reason(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator
) -> None:
    add_subscribers(db, tenant.partner_id, sim, 3, timezone="UTC")
    campaign_id = create_campaign(client, tenant, is_all=False)
    body = launch_body(
        tenant.partner_id, target={"attribute": "d_wp_browser", "values": ["Firefox"]}
    )
    update_subscribers(db, tenant.partner_id, browser="Firefox")
    update_partner(db, tenant.partner_id, frequency_cap=1)
    client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth)
    first = wait_for_launches(client, tenant, campaign_id)[0]
    assert first["sent"] == 3
    client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth)
    second = wait_for_launches(client, tenant, campaign_id, count=2)[1]
    assert (second["sent"], second["dropped"]) == (0, 3)
    assert deliveries(db, second["launch_id"]) == {"dropped:frequencyCapped": 3}
    # Silent all day long (00:00-23:59 UTC), cap off.
    update_partner(
        db, tenant.partner_id, frequency_cap=None, silent_start=0, silent_end=24 * 60 - 1
    )
    now = time.gmtime()
    if now.tm_hour == 23 and now.tm_min == 59:
        time.sleep(61)
    client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth)
    third = wait_for_launches(client, tenant, campaign_id, count=3)[2]
    assert deliveries(db, third["launch_id"]) == {"dropped:silentHours": 3}


def test_metrics_count_pushes_by_outcome(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator
) -> None:
    def total(outcome: str) -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(f'pushcamp_pushes_total{{outcome="{outcome}"}}'):
                return float(line.split()[-1])
        return 0.0

    before = total("sent"), total("unsubscriptions")
    subs = add_subscribers(db, tenant.partner_id, sim, 8)
    sim.inject(subs[0], Fault.gone())  # dropped: counted under its reason
    campaign_id = create_campaign(client, tenant)
    client.post(
        f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
    )
    wait_for_launches(client, tenant, campaign_id)
    assert total("sent") - before[0] >= 7
    assert total("unsubscriptions") - before[1] >= 1


def test_launches_watch_follows_a_launch_to_its_end(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator, database_url: str
) -> None:
    from tests.conftest import run_cli

    subs = add_subscribers(db, tenant.partner_id, sim, 60)
    for sub in subs:
        sim.inject(sub, Fault(delay=0.3))
    campaign_id = create_campaign(client, tenant)
    client.post(
        f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
    )
    watched = run_cli(
        "launches", "watch", str(campaign_id), "--interval", "0.1", database_url=database_url
    )
    summary = json.loads(watched.stdout)
    assert summary["status"] == "Sent" and summary["sent"] == 60
    assert "launch" in watched.stderr  # the progress bar
    missing = run_cli("launches", "watch", "999999999", database_url=database_url, check=False)
    assert missing.returncode == 3 and "no launch" in missing.stderr


def test_stored_endpoint_on_a_host_no_longer_allowed_is_not_posted_to(
    client: httpx.Client, tenant, db: Database, sim: PushServiceSimulator
) -> None:
    """Endpoints are checked at subscribe time and again before each post: a row whose
    host left PUSHCAMP_PUSH_ALLOWED_HOSTS (here 127.0.0.2, never listed) gets no request."""
    from datetime import UTC, datetime

    from pushcamp.domain.subscribers import NewSubscription
    from pushcamp.store import subscribers as subs_q

    [good] = add_subscribers(db, tenant.partner_id, sim, 1)
    keys = good.to_json()["keys"]
    stray = NewSubscription(
        endpoint=f"http://127.0.0.2:{sim.url.rsplit(':', 1)[1]}/push/stray",
        p256dh=keys["p256dh"],
        auth=keys["auth"],
    )
    now = datetime.now(UTC)
    with db.write() as conn:
        subs_q.upsert_subscriptions(conn, tenant.partner_id, [stray], now, engaged_at=now)
    campaign_id = create_campaign(client, tenant)
    client.post(
        f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
    )
    [launch] = wait_for_launches(client, tenant, campaign_id)
    assert deliveries(db, launch["launch_id"]) == {"sent:": 1, "dropped:internalErrors": 1}
    assert len(sim.messages(good)) == 1
