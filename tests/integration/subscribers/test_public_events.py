"""POST /v1/events: only a token signed with the partner's key counts, each (launch,
subscriber, type) at most once, and only for the partner that signed it."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from pushcamp.domain.event_tokens import sign
from pushcamp.store import Database
from pushcamp.store.models import Subscriber
from tests.conftest import Tenant, recorded_launch
from tests.integration.subscribers.conftest import (
    events,
    signing_key,
    subscriber,
    subscription,
)


def later() -> int:
    return int(time.time()) + 3600


def launch_id() -> int:
    """An id no launch has (launch ids are far below this in any test database)."""
    return secrets.randbelow(10**12) + 10**12


def subscribed(client: httpx.Client, tenant: Tenant, db: Database) -> int:
    body = subscription(tenant)
    assert client.post("/v1/subscriptions", json=body).status_code == 201
    return int(subscriber(db, tenant.partner_id, body["endpoint"])["id"])


def token_for(db: Database, tenant: Tenant, sub_id: int, **kw: int) -> tuple[str, int]:
    """A token signed with the tenant's key for a real launch of the tenant (or ``launch``)."""
    launch = kw["launch"] if "launch" in kw else recorded_launch(db, tenant.partner_id)
    key = signing_key(db, tenant.partner_id)
    return sign(key, tenant.partner_id, launch, sub_id, kw.get("expires", later())), launch


def post(client: httpx.Client, kind: str, token: str, **extra: object) -> httpx.Response:
    return client.post("/v1/events", json={"type": kind, "token": token, **extra})


def reason(r: httpx.Response) -> str:
    assert r.status_code == 400, r.text
    (error,) = r.json()["errors"]
    return f"{error['field']}: {error['reason']}"


def test_valid_token_is_counted_once(client: httpx.Client, tenant: Tenant, db: Database) -> None:
    sub_id = subscribed(client, tenant, db)
    token, launch = token_for(db, tenant, sub_id)
    r = post(client, "delivered", token)
    assert r.status_code == 200 and r.json() == {"success": True}
    rows = events(db, tenant.partner_id)
    assert [(e["launch_id"], e["subscriber_id"], e["type"]) for e in rows] == [
        (launch, sub_id, "delivered")
    ]
    # The replay is refused and stored nowhere.
    assert reason(post(client, "delivered", token)).startswith("token: ")
    assert len(events(db, tenant.partner_id)) == 1


def test_each_type_counts_once_per_push(client: httpx.Client, tenant: Tenant, db: Database) -> None:
    sub_id = subscribed(client, tenant, db)
    token, _ = token_for(db, tenant, sub_id)
    assert [post(client, t, token).status_code for t in ("delivered", "clicked", "closed")] == [
        200,
        200,
        200,
    ]
    assert [post(client, t, token).status_code for t in ("delivered", "clicked", "closed")] == [
        400,
        400,
        400,
    ]
    assert sorted(e["type"] for e in events(db, tenant.partner_id)) == [
        "clicked",
        "closed",
        "delivered",
    ]


def test_forged_signature_is_refused(client: httpx.Client, tenant: Tenant, db: Database) -> None:
    sub_id = subscribed(client, tenant, db)
    forged = sign(secrets.token_bytes(32), tenant.partner_id, launch_id(), sub_id, later())
    assert reason(post(client, "delivered", forged)) == "token: invalid signature"
    token, _ = token_for(db, tenant, sub_id)
    head, _, signature = token.rpartition("~")
    flipped = head + "~" + ("B" if signature[0] == "A" else "A") + signature[1:]
    assert reason(post(client, "delivered", flipped)) == "token: invalid signature"
    raised = token.replace(f"~{sub_id}~", f"~{sub_id + 1}~")
    assert reason(post(client, "delivered", raised)) == "token: invalid signature"
    assert events(db, tenant.partner_id) == []


def test_expired_token_is_refused(client: httpx.Client, tenant: Tenant, db: Database) -> None:
    sub_id = subscribed(client, tenant, db)
    token, _ = token_for(db, tenant, sub_id, expires=int(time.time()) - 1)
    assert reason(post(client, "clicked", token)) == "token: expired"
    assert events(db, tenant.partner_id) == []


@pytest.mark.parametrize(
    "token", ["", "junk", "pc1~x~1~2~3~" + "A" * 43, "pc1~ü~1~1~1~x", "~" * 5000, "pc1" * 400]
)
def test_malformed_tokens_are_400(client: httpx.Client, token: str) -> None:
    r = post(client, "delivered", token)
    assert r.status_code == 400 and r.json()["message"] == "Bad Request"


@pytest.mark.parametrize(
    "body",
    [
        {"type": "opened", "token": "x"},
        {"type": 1, "token": "x"},
        {"token": "x"},
        {"type": "delivered"},
        {"type": "delivered", "token": 5},
        {"type": "visit"},
        [],
    ],
)
def test_wrong_event_bodies_are_400(client: httpx.Client, body: object) -> None:
    r = client.post("/v1/events", json=body)
    assert r.status_code == 400 and r.json()["message"] == "Bad Request"


def test_token_of_partner_a_never_counts_for_partner_b(
    client: httpx.Client, make_tenant, db: Database
) -> None:
    a, b = make_tenant(), make_tenant()
    sub_a = subscribed(client, a, db)
    token_a, _ = token_for(db, a, sub_a)
    # Rewritten to name B, A's signature no longer holds under B's key.
    as_b = token_a.replace(f"pc1~{a.partner_id}~", f"pc1~{b.partner_id}~")
    assert reason(post(client, "delivered", as_b)) == "token: invalid signature"
    # Signed with A's key but claiming B: refused too.
    key_a = signing_key(db, a.partner_id)
    claims_b = sign(key_a, b.partner_id, recorded_launch(db, b.partner_id), sub_a, later())
    assert reason(post(client, "delivered", claims_b)) == "token: invalid signature"
    # A's own token sent "for B" is refused; as itself it counts for A only.
    assert post(client, "delivered", token_a, partner_id=b.partner_id).status_code == 400
    assert post(client, "delivered", token_a).status_code == 200
    assert events(db, b.partner_id) == []
    assert [e["partner_id"] for e in events(db, a.partner_id)] == [a.partner_id]


def test_click_refreshes_engagement(client: httpx.Client, tenant: Tenant, db: Database) -> None:
    sub_id = subscribed(client, tenant, db)
    long_ago = datetime.now(UTC) - timedelta(days=200)
    with db.write() as conn:
        conn.execute(
            update(Subscriber).where(Subscriber.id == sub_id).values(last_engaged_at=long_ago)
        )
    token, _ = token_for(db, tenant, sub_id)
    assert post(client, "delivered", token).status_code == 200
    assert post(client, "clicked", token).status_code == 200
    rows = [r for r in events(db, tenant.partner_id)]
    assert len(rows) == 2
    with db.read() as conn:
        from sqlalchemy import select

        engaged = conn.execute(
            select(Subscriber.last_engaged_at).where(Subscriber.id == sub_id)
        ).scalar_one()
    assert engaged is not None
    if engaged.tzinfo is None:
        engaged = engaged.replace(tzinfo=UTC)
    assert engaged > datetime.now(UTC) - timedelta(minutes=5)


def test_a_token_naming_another_partners_launch_is_refused_and_writes_nothing(
    client: httpx.Client, make_tenant, db: Database
) -> None:
    """A token validly signed by P for a launch of Q (P's key leaked, or a bug in a
    sender) counts nowhere: the launch must be the signing partner's."""
    p, q = make_tenant(), make_tenant()
    sub_p = subscribed(client, p, db)
    launch_q = recorded_launch(db, q.partner_id)
    long_ago = datetime.now(UTC) - timedelta(days=200)
    with db.write() as conn:
        conn.execute(
            update(Subscriber).where(Subscriber.id == sub_p).values(last_engaged_at=long_ago)
        )
    before = len(events(db))
    for kind in ("delivered", "clicked", "closed"):
        token, _ = token_for(db, p, sub_p, launch=launch_q)
        assert reason(post(client, kind, token)) == "token: names no launch of its partner"
    # Nor a launch that does not exist at all.
    token, _ = token_for(db, p, sub_p, launch=launch_id())
    assert reason(post(client, "delivered", token)) == "token: names no launch of its partner"
    assert len(events(db)) == before
    assert events(db, p.partner_id) == [] and events(db, q.partner_id) == []
    # The refused click refreshed no engagement.
    engaged = subscriber(db, p.partner_id, subscriber_endpoint(db, sub_p))["last_engaged_at"]
    assert engaged.replace(tzinfo=UTC) < datetime.now(UTC) - timedelta(days=100)
    # P's own launch counts.
    token, launch_p = token_for(db, p, sub_p)
    assert post(client, "delivered", token).status_code == 200
    assert [(e["partner_id"], e["launch_id"]) for e in events(db, p.partner_id)] == [
        (p.partner_id, launch_p)
    ]


def subscriber_endpoint(db: Database, sub_id: int) -> str:
    with db.read() as conn:
        from sqlalchemy import select

        return str(
            conn.execute(select(Subscriber.endpoint).where(Subscriber.id == sub_id)).scalar_one()
        )
