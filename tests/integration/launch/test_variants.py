"""Per-language content, A/B tests and personalisation (docs/delivery.md), through the
HTTP API with subscribers at the push-service simulator: what each subscriber received is
decrypted with http_ece (not pushcamp's code) and its title and body checked; the A/B
split, the per-arm statistics from real delivered and clicked events, and the winner."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from pushcamp.store import Database
from pushcamp.testing.simulator import PushServiceSimulator
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    received_payload,
    wait_for_launches,
)
from tests.integration.launch.test_statistics import TODAY


def launch(client: httpx.Client, tenant: Any, **fields: Any) -> tuple[int, httpx.Response]:
    campaign_id = create_campaign(client, tenant, is_all=True)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, **fields),
        headers=tenant.auth,
    )
    return campaign_id, answer


def test_each_subscriber_gets_its_language_and_its_attributes(
    server: Any, db: Database, sim: PushServiceSimulator
) -> None:
    from tests.conftest import Tenant

    tenant = Tenant(db)
    pid = tenant.partner_id
    [turkish] = add_subscribers(
        db, pid, sim, 1, language="tr_TR", attributes={"first_name": "Ayşe", "city": "İzmir"}
    )
    [turkish_anon] = add_subscribers(db, pid, sim, 1, language="tr_TR")
    [english] = add_subscribers(
        db, pid, sim, 1, language="en_US", attributes={"first_name": 'Bob "<b>{{city}}</b>"'}
    )
    [german] = add_subscribers(db, pid, sim, 1, language="de_DE", attributes={"first_name": " "})
    with httpx.Client(base_url=server.url, timeout=30) as client:
        campaign_id, answer = launch(
            client,
            tenant,
            title="Hi {{ first_name | there }}",
            description="Deals in {{city}}{{nope}}!",
            variants={
                "tr_TR": {
                    "title": "Merhaba {{first_name|dostum}}",
                    "description": "{{city|Şehrinizde}} indirim",
                },
                "fr_FR": {"title": "Salut", "description": "Soldes"},
            },
        )
        assert answer.status_code == 200, answer.text
        [done] = wait_for_launches(client, tenant, campaign_id)
        assert done["status"] == "Sent" and done["sent"] == 4, done
    subs = {"turkish": turkish, "turkish_anon": turkish_anon, "english": english}
    got = {name: received_payload(sim, sub) for name, sub in (subs | {"german": german}).items()}
    assert (got["turkish"]["title"], got["turkish"]["body"]) == ("Merhaba Ayşe", "İzmir indirim")
    assert (got["turkish_anon"]["title"], got["turkish_anon"]["body"]) == (
        "Merhaba dostum",
        "Şehrinizde indirim",
    )
    # An attribute is inserted as plain text, never read as a template or as HTML.
    assert (got["english"]["title"], got["english"]["body"]) == (
        'Hi Bob "<b>{{city}}</b>"',
        "Deals in !",
    )
    # No variant for German: the base texts; a blank attribute takes the default.
    assert (got["german"]["title"], got["german"]["body"]) == ("Hi there", "Deals in !")


def test_a_launch_that_could_overflow_for_some_subscriber_is_refused(
    server: Any, db: Database, sim: PushServiceSimulator
) -> None:
    from tests.conftest import Tenant

    tenant = Tenant(db)
    [sub] = add_subscribers(db, tenant.partner_id, sim, 1, attributes={"a": "x"})
    with httpx.Client(base_url=server.url, timeout=30) as client:
        # Five placeholders of up to 200 four-byte characters each: over 4 KB for some
        # subscriber, though this one's would be small.
        campaign_id, answer = launch(client, tenant, description="{{a}}{{b}}{{c}}{{d}}{{e|e}}")
        assert answer.status_code == 400, answer.text
        assert "description" in answer.text
        status = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()
        assert status["launches"] == []
        # The same in an A/B arm names the arm's field.
        _, answer = launch(
            client,
            tenant,
            ab=[
                {"title": "A", "description": "{{a}}{{b}}{{c}}{{d}}{{e}}", "split": 50},
                {"title": "B", "description": "b", "split": 50},
            ],
        )
        assert answer.status_code == 400, answer.text
        assert "ab[0].description" in answer.text
        for bad in (
            {"ab": [{"title": "A", "description": "a", "split": 60}]},
            {
                "ab": [
                    {"title": "A", "description": "a", "split": 60},
                    {"title": "B", "description": "b", "split": 30},
                ]
            },
            {"variants": {"all_ALL": {"title": "x", "description": "y"}}},
            {"variants": {"tr_TR": {"title": "x"}}},
            {"variants": ["tr_TR"]},
        ):
            _, answer = launch(client, tenant, **bad)
            assert answer.status_code == 400, (bad, answer.text)
    assert sim.messages(sub) == []


@pytest.fixture(scope="module")
def ab_launch(server: Any, db: Database, sim: PushServiceSimulator) -> dict[str, Any]:
    from tests.conftest import Tenant

    tenant = Tenant(db, v1_limit=10_000)
    subs = add_subscribers(db, tenant.partner_id, sim, 400)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        campaign_id, answer = launch(
            client,
            tenant,
            ab=[
                {"title": "Arm A", "description": "first {{x|text}}", "split": 50},
                {"title": "Arm B", "description": "second text", "split": 50},
            ],
        )
        assert answer.status_code == 200, answer.text
        [done] = wait_for_launches(client, tenant, campaign_id, timeout=120)
        assert done["status"] == "Sent" and done["sent"] == 400, done
    return {"tenant": tenant, "subs": subs, "campaign_id": campaign_id}


def metrics(client: httpx.Client, ab: dict[str, Any]) -> dict[str, Any]:
    tenant = ab["tenant"]
    answer = client.post(
        "/v1/statistics/campaign-metrics",
        json=tenant.body(start_date=TODAY, end_date=TODAY, campaign_id=ab["campaign_id"]),
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def test_ab_split_per_arm_statistics_and_winner(
    server: Any, sim: PushServiceSimulator, ab_launch: dict[str, Any]
) -> None:
    payloads = [received_payload(sim, sub) for sub in ab_launch["subs"]]
    arms = Counter((p["title"], p["body"]) for p in payloads)
    assert set(arms) == {("Arm A", "first text"), ("Arm B", "second text")}
    # 50/50 of 400 within a tolerance (4.5 standard deviations of a fair split).
    assert 155 <= arms[("Arm A", "first text")] <= 245, arms
    by_arm: dict[str, list[dict[str, Any]]] = {"Arm A": [], "Arm B": []}
    for p in payloads:
        by_arm[p["title"]].append(p)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        before = metrics(client, ab_launch)["variants"]
        assert [(v["variant"], v["title"], v["split"]) for v in before] == [
            ("A", "Arm A", 50),
            ("B", "Arm B", 50),
        ]
        assert not any(v["winner"] for v in before)  # nothing delivered yet
        assert [int(v["targeted"].replace(",", "")) for v in before] == [
            len(by_arm["Arm A"]),
            len(by_arm["Arm B"]),
        ]
        # Every push reported delivered; 30 clicks on A, 10 on B.
        clicks = {"Arm A": 30, "Arm B": 10}
        for title, got in by_arm.items():
            for index, p in enumerate(got):
                for kind in ("delivered", "clicked") if index < clicks[title] else ("delivered",):
                    r = client.post(p["events_url"], json={"type": kind, "token": p["token"]})
                    assert r.status_code == 200, r.text
        after = metrics(client, ab_launch)["variants"]
    for v, title in zip(after, ("Arm A", "Arm B"), strict=True):
        n = len(by_arm[title])
        assert v["sent"] == v["delivered"] == v["targeted"] == f"{n:,}", v
        assert v["clicks"] == str(clicks[title]), v
        assert v["ctr"] == f"{100 * clicks[title] / n + 1e-9:.2f}%", v
    assert [v["winner"] for v in after] == [True, False]


def test_the_panel_shows_the_arms_and_the_winner(
    server: Any, sim: PushServiceSimulator, ab_launch: dict[str, Any]
) -> None:
    from tests.panel.conftest import sign_in

    with httpx.Client(base_url=server.url, timeout=30) as client:
        arms = metrics(client, ab_launch)["variants"]
    with sign_in(server, ab_launch["tenant"].token) as panel:
        page = panel.get(f"/panel/campaigns/{ab_launch['campaign_id']}")
    assert page.status_code == 200, page.text
    assert 'id="variants"' in page.text
    winner = next((v for v in arms if v["winner"]), None)
    rows = page.text.split('<table class="variants">')[1].split("</table>")[0]
    if winner is None:
        assert "<strong>Winner</strong>" not in rows
    else:
        marked = rows.split('class="winner"')[1].split("</tr>")[0]
        assert winner["title"] in marked and "<strong>Winner</strong>" in marked
    for v in arms:
        assert f">{v['title']}<" in rows
