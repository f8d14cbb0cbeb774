"""Uniqueness is the database's job: racing creates of one title give exactly one 201."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from pushcamp.store import Database
from pushcamp.store.models import Campaign
from pushcamp.testing.process import ServerProcess
from tests.conftest import Tenant


def test_fifty_concurrent_creates_of_one_title_give_one_201(
    server: ServerProcess, tenant: Tenant, db: Database
) -> None:
    barrier = threading.Barrier(50)
    body = tenant.body(title="Race for the title", language="en_US")

    def attempt(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            barrier.wait()
            return c.post("/v1/single", json=body, headers=tenant.auth).status_code

    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(attempt, range(50)))
    assert codes.count(201) == 1, codes
    assert codes.count(400) == 49, codes
    with db.read() as conn:
        stored = conn.execute(
            select(func.count())
            .select_from(Campaign)
            .where(Campaign.partner_id == tenant.partner_id, Campaign.title == body["title"])
        ).scalar_one()
    assert stored == 1


def test_concurrent_distinct_titles_all_succeed(server: ServerProcess, tenant: Tenant) -> None:
    def attempt(i: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            body = tenant.body(title=f"title {i}", language="en_US")
            return c.post("/v1/single", json=body, headers=tenant.auth).status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(attempt, range(100)))
    assert codes == [201] * 100
