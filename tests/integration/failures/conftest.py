"""Helpers for the failure tests: a database of each test's own (no other server's engine
may take its launch's batches), a partner with a token, a launch started over real HTTP,
and what each subscriber ended with in the database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from pushcamp.services import partners, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store.models import Delivery, Subscriber
from pushcamp.testing.simulator import PushServiceSimulator, SimulatedSubscription
from tests.conftest import fresh_database
from tests.integration.launch.conftest import add_subscribers, launch_body

PARTNER = "fail1"


@dataclass
class Setup:
    url: str
    db: Database
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def own(tmp_path: Path, backend: str) -> Iterator[Setup]:
    with fresh_database(tmp_path, "pushcamp_fail") as url:
        db = Database(Settings(database_url=url))
        db.migrate()
        partners.create_partner(db, PARTNER, "failure tests", 10_000, 10_000)
        try:
            yield Setup(url, db, tokens.create_token(db, PARTNER))
        finally:
            db.dispose()


def subscribe(own: Setup, sim: PushServiceSimulator, n: int) -> list[SimulatedSubscription]:
    return add_subscribers(own.db, PARTNER, sim, n)


def start_launch(client: httpx.Client, own: Setup, title: str = "failures") -> int:
    """Create an is_all campaign and launch it; the campaign id."""
    created = client.post(
        "/v1/single",
        json={"partner_id": PARTNER, "title": title, "language": "all_ALL", "is_all": True},
        headers=own.auth,
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["campaign_id"])
    launched = client.post(f"/v1/single/{campaign_id}", json=launch_body(PARTNER), headers=own.auth)
    assert launched.status_code == 200, launched.text
    return campaign_id


def wait_until_sent(
    client: httpx.Client, own: Setup, campaign_id: int, timeout: float = 180
) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/single/{campaign_id}", headers=own.auth)
        if r.status_code == 200:
            [launch] = r.json()["launches"]
            if launch["status"] == "Sent":
                return dict(launch)
            assert launch["status"] in ("Queued", "Sending"), launch
        assert time.monotonic() < deadline, f"the launch did not end: {r.text}"
        time.sleep(0.2)


def wait_for_requests(sim: PushServiceSimulator, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sim.stats()["requests"] < count:
        assert time.monotonic() < deadline, f"the launch did not get going: {sim.stats()}"
        time.sleep(0.02)


@dataclass(frozen=True)
class Record:
    state: str
    reason: str | None
    status_code: int | None


def records_by_endpoint(db: Database) -> dict[str, list[Record]]:
    """Every delivery record, keyed by its subscriber's endpoint (a list: a subscriber
    with two records shows as two)."""
    with db.read() as conn:
        rows = conn.execute(
            select(Subscriber.endpoint, Delivery.state, Delivery.reason, Delivery.status_code).join(
                Subscriber, Subscriber.id == Delivery.subscriber_id
            )
        ).all()
    out: dict[str, list[Record]] = {}
    for endpoint, state, reason, status in rows:
        out.setdefault(endpoint, []).append(Record(state, reason, status))
    return out


def active_by_endpoint(db: Database) -> dict[str, bool]:
    with db.read() as conn:
        return {e: bool(a) for e, a in conn.execute(select(Subscriber.endpoint, Subscriber.active))}
