"""The launch endpoints' contract (§2.2): validation with the fields named, ownership,
the payload size check before anything is sent, Idempotency-Key, and the v1/v2 limits."""

from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import func, select

from pushcamp.store import Database
from pushcamp.store.models import Launch
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    wait_for_launches,
)


def launch_count(db: Database, campaign_id: int) -> int:
    with db.read() as conn:
        return conn.execute(
            select(func.count()).select_from(Launch).where(Launch.campaign_id == campaign_id)
        ).scalar_one()


def fields(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"] == "Bad Request"
    return {e["field"] for e in answer.json().get("errors", [])}


def test_missing_fields_are_all_named(client: httpx.Client, tenant) -> None:
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}", json={"partner_id": tenant.partner_id}, headers=tenant.auth
    )
    assert {"title", "description", "link", "ttl"} <= fields(answer)


@pytest.mark.parametrize("ttl", [3600, "3600", 0, "0", 864000])
def test_ttl_as_integer_or_string(client: httpx.Client, tenant, ttl: object) -> None:
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, ttl=ttl),
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("ttl", [-1, 864001, "1e3", "12.5", " 1", True, None, [1], "٣"])
def test_bad_ttl_is_400(client: httpx.Client, tenant, ttl: object) -> None:
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, ttl=ttl),
        headers=tenant.auth,
    )
    assert "ttl" in fields(answer)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"image": "http://insecure.pushcamp.dev/i.png"}, "image"),
        ({"banner": "ftp://pushcamp.dev/b.png"}, "banner"),
        ({"link": "javascript:alert(1)"}, "link"),
        ({"description": "x" * 256}, "description"),
        ({"banner": "https://pushcamp.dev/b.png", "description": "x" * 31}, "description"),
        ({"title": "x" * 101}, "title"),
        ({"include_unengaged": "true"}, "include_unengaged"),
        ({"language": "english"}, "language"),
        ({"target": {"attribute": "d_wp_browser", "values": []}}, "target.values"),
    ],
)
def test_each_rule_names_its_field(client: httpx.Client, tenant, extra: dict, field: str) -> None:
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, **extra),
        headers=tenant.auth,
    )
    assert any(f == field or f.startswith(field) for f in fields(answer)), answer.text


def test_payload_over_4096_bytes_on_the_wire_is_refused_before_sending(
    client: httpx.Client, tenant, db: Database
) -> None:
    campaign_id = create_campaign(client, tenant)
    long_url = "https://pushcamp.dev/" + "a" * 1990
    body = launch_body(
        tenant.partner_id, title="🎉" * 100, description="ü" * 255, image=long_url, link=long_url
    )
    answer = client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth)
    assert fields(answer)
    assert launch_count(db, campaign_id) == 0


def test_unknown_deleted_and_foreign_campaigns_are_400(
    client: httpx.Client, tenant, make_tenant
) -> None:
    assert fields(
        client.post(
            "/v1/single/999999999", json=launch_body(tenant.partner_id), headers=tenant.auth
        )
    )
    other = make_tenant(v1_limit=1000)
    foreign = create_campaign(client, other)
    assert fields(
        client.post(
            f"/v1/single/{foreign}", json=launch_body(tenant.partner_id), headers=tenant.auth
        )
    )
    mine = create_campaign(client, tenant)
    client.request("DELETE", f"/v1/single/{mine}", json=tenant.body(), headers=tenant.auth)
    assert fields(
        client.post(f"/v1/single/{mine}", json=launch_body(tenant.partner_id), headers=tenant.auth)
    )
    # Another partner's partner_id in the body: 401, as for every endpoint.
    answer = client.post(
        f"/v1/single/{foreign}", json=launch_body(other.partner_id), headers=tenant.auth
    )
    assert answer.status_code == 401 and answer.json() == {"message": "Unauthorized"}


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"partner_id": "x",}', b"null", b'"text"'])
def test_malformed_bodies_are_400(client: httpx.Client, tenant, raw: bytes) -> None:
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        content=raw,
        headers={**tenant.auth, "Content-Type": "application/json"},
    )
    assert answer.status_code == 400 and answer.json()["message"] == "Bad Request"


def test_idempotency_key_replays_the_first_answer_and_sends_once(
    client: httpx.Client, tenant, make_tenant, db: Database
) -> None:
    campaign_id = create_campaign(client, tenant, is_all=False)
    body = launch_body(tenant.partner_id, target={"attribute": "d_wp_device", "values": ["mobile"]})
    headers = {**tenant.auth, "Idempotency-Key": "retry-42"}
    first = client.post(f"/v1/single/{campaign_id}", json=body, headers=headers)
    second = client.post(f"/v1/single/{campaign_id}", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert launch_count(db, campaign_id) == 1
    changed = client.post(
        f"/v1/single/{campaign_id}", json={**body, "title": "Other"}, headers=headers
    )
    assert "Idempotency-Key" in fields(changed)
    assert launch_count(db, campaign_id) == 1
    # Without the key, or with another one, it launches again (a segmented campaign).
    assert (
        client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth).status_code == 200
    )
    assert launch_count(db, campaign_id) == 2
    # Keys are per partner: another partner's same key is a different key.
    other = make_tenant(v1_limit=1000)
    theirs = create_campaign(client, other, is_all=False)
    answer = client.post(
        f"/v1/single/{theirs}",
        json=launch_body(
            other.partner_id, target={"attribute": "d_wp_device", "values": ["mobile"]}
        ),
        headers={**other.auth, "Idempotency-Key": "retry-42"},
    )
    assert answer.status_code == 200 and answer.json()["campaign_id"] == theirs


def test_v1_and_v2_launches_have_their_own_budgets(client: httpx.Client, make_tenant) -> None:
    tenant = make_tenant(v1_limit=2, v2_limit=6000)
    campaign_id = create_campaign(client, tenant, is_all=False)
    body = launch_body(tenant.partner_id, target={"attribute": "d_wp_os", "values": ["Linux"]})
    codes = [
        client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    limited = client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth)
    assert limited.json() == {"message": "Too Many Requests", "status": 429}
    assert int(limited.headers["Retry-After"]) >= 1
    v2 = client.post(f"/v2/single/{campaign_id}", json=body, headers=tenant.auth)
    assert v2.status_code == 200
    assert v2.headers["X-RateLimit-Limit"] == "6000"


def test_idempotency_key_expires_after_its_window(
    client: httpx.Client, tenant, db: Database
) -> None:
    from datetime import UTC, datetime, timedelta

    from pushcamp.store.models import IdempotencyKey

    campaign_id = create_campaign(client, tenant, is_all=False)
    body = launch_body(tenant.partner_id, target={"attribute": "d_wp_device", "values": ["mobile"]})
    headers = {**tenant.auth, "Idempotency-Key": "old-key"}
    assert client.post(f"/v1/single/{campaign_id}", json=body, headers=headers).status_code == 200
    with db.write() as conn:  # age the key past the 48 h window
        conn.execute(
            IdempotencyKey.__table__.update()  # type: ignore[attr-defined]
            .where(IdempotencyKey.partner_id == tenant.partner_id)
            .values(created_at=datetime.now(UTC) - timedelta(hours=49))
        )
    changed = {**body, "title": "A new one"}
    assert (
        client.post(f"/v1/single/{campaign_id}", json=changed, headers=headers).status_code == 200
    )
    assert launch_count(db, campaign_id) == 2
    with db.read() as conn:
        ages = conn.execute(
            select(IdempotencyKey.created_at).where(IdempotencyKey.partner_id == tenant.partner_id)
        ).all()
    assert len(ages) == 1  # the expired row is gone, the new one kept


def _keyed_campaigns(client: httpx.Client, tenant, db: Database, sim, is_all: bool):  # type: ignore[no-untyped-def]
    """Two campaigns of the tenant, a launch body, and subscribers the body reaches."""
    subs = add_subscribers(db, tenant.partner_id, sim, 5, device="mobile")
    first = create_campaign(client, tenant, is_all=is_all)
    second = create_campaign(client, tenant, is_all=is_all)
    extra = {} if is_all else {"target": {"attribute": "d_wp_device", "values": ["mobile"]}}
    return subs, first, second, launch_body(tenant.partner_id, **extra)


@pytest.mark.parametrize("is_all", [True, False])
def test_idempotency_key_reused_on_another_campaign_is_400_and_launches_nothing(
    client: httpx.Client, tenant, db: Database, sim, is_all: bool
) -> None:
    subs, a, b, body = _keyed_campaigns(client, tenant, db, sim, is_all)
    headers = {**tenant.auth, "Idempotency-Key": "K"}
    first = client.post(f"/v1/single/{a}", json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"success": True, "campaign_id": a}
    other = client.post(f"/v1/single/{b}", json=body, headers=headers)
    assert fields(other) == {"Idempotency-Key"}
    status = client.get(f"/v1/single/{b}", headers=tenant.auth).json()
    assert status["status"] == "Draft" and status["launches"] == []
    assert launch_count(db, b) == 0
    again = client.post(f"/v1/single/{a}", json=body, headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    assert launch_count(db, a) == 1
    [launch] = wait_for_launches(client, tenant, a)
    assert launch["sent"] == 5
    assert [len(sim.messages(s)) for s in subs] == [1] * 5
    # Another key launches the second campaign as usual.
    fresh = client.post(
        f"/v1/single/{b}", json=body, headers={**tenant.auth, "Idempotency-Key": "L"}
    )
    assert fresh.status_code == 200 and fresh.json()["campaign_id"] == b


def _post_all(url: str, requests: list[tuple[str, dict, dict]]) -> list[httpx.Response]:  # type: ignore[type-arg]
    """Send the requests at once from threads of their own, one connection each; the
    answers in order (assertions stay in the caller's thread)."""
    barrier = threading.Barrier(len(requests))
    answers: list[httpx.Response | BaseException | None] = [None] * len(requests)

    def send(i: int) -> None:
        path, body, headers = requests[i]
        try:
            with httpx.Client(base_url=url, timeout=60) as own:
                barrier.wait(timeout=30)
                answers[i] = own.post(path, json=body, headers=headers)
        except BaseException as exc:  # handed to the test's thread
            answers[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    out = []
    for answer in answers:
        if not isinstance(answer, httpx.Response):
            raise AssertionError(f"a request failed: {answer!r}")
        out.append(answer)
    return out


@pytest.mark.parametrize("is_all", [True, False])
def test_concurrent_requests_with_one_key_and_body_send_once(
    client: httpx.Client, tenant, db: Database, sim, is_all: bool
) -> None:
    subs, a, _, body = _keyed_campaigns(client, tenant, db, sim, is_all)
    headers = {**tenant.auth, "Idempotency-Key": "together"}
    answers = _post_all(str(client.base_url), [(f"/v1/single/{a}", body, headers)] * 16)
    assert [r.status_code for r in answers] == [200] * 16, [r.text for r in answers]
    assert all(r.json() == {"success": True, "campaign_id": a} for r in answers)
    assert launch_count(db, a) == 1
    [launch] = wait_for_launches(client, tenant, a)
    assert launch["sent"] == 5
    assert [len(sim.messages(s)) for s in subs] == [1] * 5


@pytest.mark.parametrize("is_all", [True, False])
def test_concurrent_requests_with_one_key_on_two_campaigns_launch_one(
    client: httpx.Client, tenant, db: Database, sim, is_all: bool
) -> None:
    subs, a, b, body = _keyed_campaigns(client, tenant, db, sim, is_all)
    headers = {**tenant.auth, "Idempotency-Key": "shared"}
    requests = [(f"/v1/single/{c}", body, headers) for c in (a, b) * 6]
    answers = _post_all(str(client.base_url), requests)
    launched = {launch_count(db, a), launch_count(db, b)}
    assert launched == {0, 1}
    winner = a if launch_count(db, a) == 1 else b
    for (path, _, _), answer in zip(requests, answers, strict=True):
        if path.endswith(f"/{winner}"):
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"success": True, "campaign_id": winner}
        else:
            assert fields(answer) == {"Idempotency-Key"}
    loser = b if winner == a else a
    assert client.get(f"/v1/single/{loser}", headers=tenant.auth).json()["status"] == "Draft"
    wait_for_launches(client, tenant, winner)
    assert [len(sim.messages(s)) for s in subs] == [1] * 5
