"""campaign-metrics' ``clickMetrics`` for a launch with two action buttons
(docs/delivery.md, "Richer notifications"; docs/statistics.md): clicks reported with
``action`` 0 and 1 are counted under ``primaryAction`` and ``secondaryAction``, headed by
the buttons' labels, the others under ``mainAction``, each with its share of all clicks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from pushcamp.store import Database
from pushcamp.testing.simulator import PushServiceSimulator, SimulatedSubscription
from tests.conftest import Tenant
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    wait_for_launches,
)

BUTTONS = [
    {"title": "Shop now", "link": "https://shop.pushcamp.dev/sale?b=0"},
    {"title": "Remind me", "link": "https://shop.pushcamp.dev/remind"},
]


def token_of(sim: PushServiceSimulator, sub: SimulatedSubscription) -> str:
    [message] = sim.messages(sub)
    return str(json.loads(message.text)["token"])


def click_metrics(client: httpx.Client, tenant: Tenant, campaign_id: int) -> list[Any]:
    today = datetime.now(UTC).date().isoformat()
    answer = client.post(
        "/v1/statistics/campaign-metrics",
        json=tenant.body(campaign_id=campaign_id, start_date=today, end_date=today),
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text
    metrics: list[Any] = answer.json()["clickMetrics"]
    return metrics


def test_clicks_are_counted_per_button(
    client: httpx.Client, db: Database, sim: PushServiceSimulator
) -> None:
    tenant = Tenant(db, v1_limit=10_000)
    subs = add_subscribers(db, tenant.partner_id, sim, 5)
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, actions=BUTTONS),
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text
    [launch] = wait_for_launches(client, tenant, campaign_id)
    assert (launch["status"], launch["sent"]) == ("Sent", 5), launch
    assert click_metrics(client, tenant, campaign_id) == [
        {"name": "mainAction", "header": "Main Element", "clicks": "0", "clickRatio": "0.00%"},
        {"name": "primaryAction", "header": "Shop now", "clicks": "0", "clickRatio": "0.00%"},
        {"name": "secondaryAction", "header": "Remind me", "clicks": "0", "clickRatio": "0.00%"},
    ]
    # One click on the body, one on button 0, two on button 1; the fifth never clicks.
    for sub, action in zip(subs, (None, 0, 1, 1), strict=False):
        body: dict[str, Any] = {"type": "clicked", "token": token_of(sim, sub)}
        if action is not None:
            body["action"] = action
        assert client.post("/v1/events", json=body).status_code == 200
    assert click_metrics(client, tenant, campaign_id) == [
        {"name": "mainAction", "header": "Main Element", "clicks": "1", "clickRatio": "25.00%"},
        {"name": "primaryAction", "header": "Shop now", "clicks": "1", "clickRatio": "25.00%"},
        {
            "name": "secondaryAction",
            "header": "Remind me",
            "clicks": "2",
            "clickRatio": "50.00%",
        },
    ]
    status = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()
    assert status["launches"][0]["clicks"] == 4


def test_without_buttons_every_click_is_on_the_main_element(
    client: httpx.Client, db: Database, sim: PushServiceSimulator
) -> None:
    tenant = Tenant(db, v1_limit=10_000)
    subs = add_subscribers(db, tenant.partner_id, sim, 2)
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
    )
    assert answer.status_code == 200, answer.text
    wait_for_launches(client, tenant, campaign_id)
    click = {"type": "clicked", "token": token_of(sim, subs[0])}
    assert client.post("/v1/events", json=click).status_code == 200
    assert client.post("/v1/events", json={**click, "action": 0}).status_code == 400
    assert click_metrics(client, tenant, campaign_id) == [
        {"name": "mainAction", "header": "Main Element", "clicks": "1", "clickRatio": "100.00%"},
        {"name": "primaryAction", "header": "", "clicks": "0", "clickRatio": "0.00%"},
        {"name": "secondaryAction", "header": "", "clicks": "0", "clickRatio": "0.00%"},
    ]
