"""Scaled-out mode: with PUSHCAMP_REDIS_URL set, a partner's budgets are one budget
whatever API process a request reaches (GCRA run atomically in Redis, on Redis's clock),
limit changes reach every process, and an Idempotency-Key holds across processes (it
lives in the shared database)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select

from pushcamp.store.models import Campaign, Launch
from tests.conftest import Tenant, run_cli
from tests.integration.scaled.conftest import Cluster

LIMITED = {"message": "Too Many Requests", "status": 429}


def all_at_once(
    clients: list[httpx.Client], requests: list[Callable[[httpx.Client], httpx.Response]]
):  # type: ignore[no-untyped-def]
    """Send ``requests[i]`` through ``clients[i % len(clients)]``, every one in its own
    thread released by one barrier; the answers (or exceptions) in request order."""
    barrier = threading.Barrier(len(requests))
    answers: list[httpx.Response | BaseException | None] = [None] * len(requests)
    local = threading.local()

    def run(i: int) -> None:
        base = clients[i % len(clients)]
        # One connection per thread (an httpx.Client is not shared across threads here).
        local.client = httpx.Client(base_url=base.base_url, timeout=30)
        try:
            local.client.get("/healthz")  # connected before the barrier
            barrier.wait(timeout=30)
            answers[i] = requests[i](local.client)
        except BaseException as exc:  # recorded, asserted in the test's thread
            answers[i] = exc
        finally:
            local.client.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


@pytest.fixture
def clients(cluster: Cluster):  # type: ignore[no-untyped-def]
    opened = [httpx.Client(base_url=s.url, timeout=30) for s in cluster.servers]
    yield opened
    for c in opened:
        c.close()


def create(title: str, tenant: Tenant) -> Callable[[httpx.Client], httpx.Response]:
    return lambda c: c.post(
        "/v1/single", json=tenant.body(title=title, language="en_US"), headers=tenant.auth
    )


def stored_titles(cluster: Cluster, partner_id: str) -> set[str]:
    with cluster.db.read() as conn:
        return set(
            conn.execute(select(Campaign.title).where(Campaign.partner_id == partner_id)).scalars()
        )


def test_three_processes_share_one_partners_30_per_minute(
    cluster: Cluster, clients: list[httpx.Client]
) -> None:
    tenant = Tenant(cluster.db, v1_limit=30)
    # Every process has checked the token once (its status budget is another budget).
    for c in clients:
        assert c.get("/v1/single/1", headers=tenant.auth).status_code == 400
    titles = [f"c{i}" for i in range(60)]
    answers = all_at_once(clients, [create(t, tenant) for t in titles])

    assert all(isinstance(a, httpx.Response) for a in answers), answers
    responses = [a for a in answers if isinstance(a, httpx.Response)]
    assert Counter(r.status_code for r in responses) == {201: 30, 429: 30}
    created = [r for r in responses if r.status_code == 201]
    # Each allowed request took its own slot: the remaining counts are 29..0, once each.
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in created) == list(range(30))
    for r in responses:
        assert r.headers["x-ratelimit-limit"] == "30"
        assert r.headers["ratelimit-policy"] == '"create";q=30;w=60'
        if r.status_code == 429:
            assert r.json() == LIMITED
            assert 1 <= int(r.headers["retry-after"]) <= 2
            assert r.headers["x-ratelimit-remaining"] == "0"
    # Every process both accepted and refused: the budget was one, not one per process.
    by_process = [
        Counter(a.status_code for a in answers[i::3] if isinstance(a, httpx.Response))
        for i in range(3)
    ]
    assert sum(p[201] for p in by_process) == 30
    # What was acknowledged is stored, and nothing else.
    assert stored_titles(cluster, tenant.partner_id) == {
        t
        for t, a in zip(titles, answers, strict=True)
        if isinstance(a, httpx.Response) and a.status_code == 201
    }
    # The state is Redis's, under the configured prefix, one key for the budget.
    assert cluster.redis.client.exists(f"{cluster.redis.prefix}rl:{tenant.partner_id}:create")


def test_set_limits_reaches_every_process(cluster: Cluster, clients: list[httpx.Client]) -> None:
    tenant = Tenant(cluster.db, v1_limit=1)
    first, second, third = clients
    assert create("one", tenant)(first).status_code == 201
    assert create("two", tenant)(second).status_code == 429  # the budget is shared
    assert create("three", tenant)(third).status_code == 429

    run_cli(
        "partners",
        "set-limits",
        tenant.partner_id,
        "--v1-limit",
        "1000",
        database_url=cluster.database_url,
    )
    # Each process trusts what it read about a token for up to 2 s (its auth cache).
    for i, c in enumerate(clients):
        r = until(c, tenant, f"raised {i}", 201)
        assert r.status_code == 201 and r.headers["x-ratelimit-limit"] == "1000"

    run_cli(
        "partners",
        "set-limits",
        tenant.partner_id,
        "--v1-limit",
        "1",
        database_url=cluster.database_url,
    )
    for i, c in enumerate(clients):
        r = until(c, tenant, f"lowered {i}", 429)
        assert r.status_code == 429 and r.headers["x-ratelimit-limit"] == "1"
        assert r.json() == LIMITED


def until(
    client: httpx.Client, tenant: Tenant, label: str, status: int, within: float = 6
) -> httpx.Response:
    """Create campaigns through ``client`` until one gets ``status`` (or time is up)."""
    deadline = time.monotonic() + within
    while True:
        r = create(f"{label} {secrets.token_hex(4)}", tenant)(client)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_idempotency_key_holds_across_processes(
    cluster: Cluster, clients: list[httpx.Client]
) -> None:
    tenant = Tenant(cluster.db, v1_limit=1000)
    made = clients[0].post(
        "/v1/single",
        json=tenant.body(title=f"k {secrets.token_hex(3)}", language="en_US", is_all=False),
        headers=tenant.auth,
    )
    assert made.status_code == 201, made.text
    campaign_id = made.json()["campaign_id"]
    # A segment nobody is in: the launch is recorded and ends at once, nothing to send.
    body = tenant.body(
        title="Hello",
        description="x",
        link="https://shop.pushcamp.dev/",
        ttl=3600,
        target={"attribute": "d_wp_device", "values": ["mobile"]},
    )
    headers = {**tenant.auth, "Idempotency-Key": f"retry-{secrets.token_hex(4)}"}
    answers = all_at_once(
        clients,
        [
            lambda c: c.post(f"/v1/single/{campaign_id}", json=body, headers=headers)
            for _ in range(12)
        ],
    )
    assert all(isinstance(a, httpx.Response) for a in answers), answers
    responses = [a for a in answers if isinstance(a, httpx.Response)]
    assert [r.status_code for r in responses] == [200] * 12, [r.text for r in responses]
    assert {r.text for r in responses} == {f'{{"success":true,"campaign_id":{campaign_id}}}'}
    with cluster.db.read() as conn:
        launches = conn.execute(
            select(func.count()).select_from(Launch).where(Launch.campaign_id == campaign_id)
        ).scalar_one()
    assert launches == 1
    # The key is bound to its body on every process.
    for c in clients:
        other = c.post(
            f"/v1/single/{campaign_id}", json={**body, "title": "Other"}, headers=headers
        )
        assert other.status_code == 400
        assert {e["field"] for e in other.json()["errors"]} == {"Idempotency-Key"}
