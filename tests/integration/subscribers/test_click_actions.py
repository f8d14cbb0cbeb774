"""POST /v1/events with ``action``: a click on one of a notification's action buttons
(docs/delivery.md, "Richer notifications") is a click like any other, stored with the
button's index; the index must be one the launch's notification has, and only a click
carries one. A refused report writes nothing, so the real click can still be reported."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from pushcamp.domain.event_tokens import sign
from pushcamp.domain.launch_codec import request_to_dict
from pushcamp.domain.launches import parse_launch
from pushcamp.store import Database
from tests.conftest import Tenant, recorded_launch
from tests.integration.subscribers.conftest import events, signing_key, subscriber, subscription

BUTTONS = [
    {"title": "Shop now", "link": "https://shop.example/sale"},
    {"title": "Later", "link": "https://shop.example/later"},
]


def launch_with(db: Database, tenant: Tenant, actions: list[dict[str, str]] | None) -> int:
    """A recorded launch of the tenant whose stored request has ``actions`` (None: a
    request stored before pushcamp had buttons, without the field at all)."""
    body: dict[str, Any] = {
        "partner_id": tenant.partner_id,
        "title": "Sale",
        "description": "Half price",
        "link": "https://shop.example/",
        "ttl": 60,
    }
    if actions is not None:
        body["actions"] = actions
    request = request_to_dict(parse_launch(body, is_all=True))
    if actions is None:
        for name in ("actions", "badge", "require_interaction", "renotify", "silent"):
            del request[name]
    return recorded_launch(db, tenant.partner_id, request, is_all=True)


def token_for(
    client: httpx.Client, db: Database, tenant: Tenant, actions: list[dict[str, str]] | None
) -> tuple[str, int, int]:
    body = subscription(tenant)
    assert client.post("/v1/subscriptions", json=body).status_code == 201
    sub_id = int(subscriber(db, tenant.partner_id, body["endpoint"])["id"])
    launch = launch_with(db, tenant, actions)
    key = signing_key(db, tenant.partner_id)
    return sign(key, tenant.partner_id, launch, sub_id, int(time.time()) + 3600), launch, sub_id


def post(client: httpx.Client, kind: str, token: str, **extra: object) -> httpx.Response:
    return client.post("/v1/events", json={"type": kind, "token": token, **extra})


def refused_field(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "Bad Request"
    (error,) = r.json()["errors"]
    field: str = error["field"]
    return field


def stored(db: Database, tenant: Tenant) -> list[tuple[str, int | None]]:
    return [(e["type"], e["action"]) for e in events(db, tenant.partner_id)]


@pytest.mark.parametrize("action", [0, 1])
def test_a_click_on_a_button_is_stored_with_its_index(
    action: int, client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    token, launch, sub_id = token_for(client, db, tenant, BUTTONS)
    r = post(client, "clicked", token, action=action)
    assert r.status_code == 200 and r.json() == {"success": True}
    [row] = events(db, tenant.partner_id)
    assert (row["launch_id"], row["subscriber_id"], row["type"], row["action"]) == (
        launch,
        sub_id,
        "clicked",
        action,
    )
    # Still one click per push: a second one, on the other button or the body, is refused.
    assert refused_field(post(client, "clicked", token, action=1 - action)) == "token"
    assert refused_field(post(client, "clicked", token)) == "token"
    assert stored(db, tenant) == [("clicked", action)]


def test_a_click_on_the_notification_has_no_action(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    token, _, _ = token_for(client, db, tenant, BUTTONS)
    assert post(client, "clicked", token).status_code == 200
    assert post(client, "delivered", token, action=None).status_code == 200
    assert stored(db, tenant) == [("clicked", None), ("delivered", None)]


@pytest.mark.parametrize("kind", ["delivered", "closed"])
def test_only_a_click_has_an_action(
    kind: str, client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    token, _, _ = token_for(client, db, tenant, BUTTONS)
    assert refused_field(post(client, kind, token, action=0)) == "action"
    assert stored(db, tenant) == []
    assert post(client, kind, token).status_code == 200


@pytest.mark.parametrize("action", [2, -1, 255, 2**63, "1", "0", True, False, 1.0, [1], {}])
def test_an_action_is_the_integer_0_or_1_never_coerced(
    action: object, client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    token, _, _ = token_for(client, db, tenant, BUTTONS)
    assert refused_field(post(client, "clicked", token, action=action)) == "action"
    assert stored(db, tenant) == []
    assert post(client, "clicked", token, action=1).status_code == 200  # not used up


@pytest.mark.parametrize(
    ("actions", "action"),
    [(BUTTONS[:1], 1), ([], 0), (None, 0), (None, 1)],
    ids=["one-button", "no-buttons", "stored-before-buttons-0", "stored-before-buttons-1"],
)
def test_the_button_must_exist_on_the_launchs_notification(
    actions: list[dict[str, str]] | None,
    action: int,
    client: httpx.Client,
    tenant: Tenant,
    db: Database,
) -> None:
    token, _, _ = token_for(client, db, tenant, actions)
    r = post(client, "clicked", token, action=action)
    assert refused_field(r) == "action"
    assert f"no action {action}" in r.json()["errors"][0]["reason"]
    assert stored(db, tenant) == []
    assert post(client, "clicked", token).status_code == 200
    assert stored(db, tenant) == [("clicked", None)]


def test_an_action_on_another_partners_launch_writes_nothing(
    client: httpx.Client, tenant: Tenant, make_tenant: Any, db: Database
) -> None:
    """The token is the tenant's, signed with its key, but names another partner's launch
    with two buttons: refused as any such token is, whatever the action."""
    other = make_tenant()
    foreign_launch = launch_with(db, other, BUTTONS)
    body = subscription(tenant)
    assert client.post("/v1/subscriptions", json=body).status_code == 201
    sub_id = int(subscriber(db, tenant.partner_id, body["endpoint"])["id"])
    key = signing_key(db, tenant.partner_id)
    token = sign(key, tenant.partner_id, foreign_launch, sub_id, int(time.time()) + 3600)
    assert refused_field(post(client, "clicked", token, action=1)) == "token"
    assert stored(db, tenant) == [] and stored(db, other) == []
