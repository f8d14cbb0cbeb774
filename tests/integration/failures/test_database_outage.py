"""The database goes away in the middle of a launch to 3,000 subscribers, through real
processes: PostgreSQL cut by a TCP proxy between the server and it, or, on SQLite,
another process holding the write lock. While it is down the API answers 424; once it
is back the launch resumes by itself; nobody is skipped, and the only pushes sent twice
are those answered but not yet recorded when writes began to fail (the in-flight window:
at most a keyset page per worker)."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import Fault, PushServiceSimulator
from tests.conftest import BACKEND
from tests.integration.failures.conftest import (
    PARTNER,
    Setup,
    records_by_endpoint,
    start_launch,
    subscribe,
    wait_for_requests,
    wait_until_sent,
)
from tests.integration.tcpproxy import TcpProxy

AUDIENCE = 3_000
PAGE_SIZE = 500  # the engine's keyset page
WORKERS = 4  # PUSHCAMP_DELIVERY_WORKERS (default)
DOWN_FOR = 4.0  # seconds the database stays away (longer than the lease below)

pytestmark = pytest.mark.slow


@contextmanager
def database_path(own: Setup) -> Iterator[tuple[str, TcpProxy | None]]:
    """The URL the server gets: through a proxy on PostgreSQL, the file on SQLite."""
    if BACKEND != "postgresql":
        yield own.url, None
        return
    url = make_url(own.url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(False), proxy
    finally:
        proxy.close()


@contextmanager
def outage(own: Setup, proxy: TcpProxy | None) -> Iterator[None]:
    if proxy is not None:
        proxy.cut()
        try:
            yield
        finally:
            proxy.restore()
        return
    path = make_url(own.url).database
    assert path
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # this process holds the write lock
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_database_lost_mid_launch_then_back(own: Setup, tmp_path: Path) -> None:
    env = {
        "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1",
        "PUSHCAMP_DB_TIMEOUT_SECONDS": "1",
        "PUSHCAMP_DELIVERY_LEASE_SECONDS": "3",
    }
    with (
        PushServiceSimulator(seed=9, keep_messages=4) as sim,
        database_path(own) as (url, proxy),
    ):
        subs = subscribe(own, sim, AUDIENCE)
        sim.add_fault_rate(Fault.slow(0.02), 1.0)  # every answer 20 ms late
        with (
            ServerProcess(url, tmp_path / "server.log", env=env) as server,
            httpx.Client(base_url=server.url, timeout=30) as c,
        ):
            campaign_id = start_launch(c, own)
            wait_for_requests(sim, AUDIENCE // 5)
            with outage(own, proxy):
                before = sim.stats()["requests"]
                down_until = time.monotonic() + DOWN_FOR
                answers = []
                while time.monotonic() < down_until:
                    r = c.post(
                        "/v1/single",
                        json={"partner_id": PARTNER, "title": "while down", "language": "en_US"},
                        headers=own.auth,
                    )
                    answers.append((r.status_code, r.json()))
                    time.sleep(0.2)
                during = sim.stats()["requests"] - before
            assert answers and set(map(str, answers)) == {str((424, {"message": "SERVICE:-"}))}
            assert before < AUDIENCE  # the outage began in the middle of the launch
            launch = wait_until_sent(c, own, campaign_id)

    records = records_by_endpoint(own.db)
    assert len(records) == AUDIENCE  # every subscriber has a record...
    assert all(len(r) == 1 for r in records.values())  # ...exactly one
    assert {r[0].state for r in records.values()} == {"sent"}
    assert launch["sent"] == AUDIENCE
    received = Counter({s.endpoint: len(sim.messages(s)) for s in subs})
    assert min(received.values()) == 1  # nobody skipped
    twice = sum(1 for n in received.values() if n > 1)
    print(f"requests during the outage {during}, received twice {twice}")
    assert max(received.values()) <= 2
    assert twice <= PAGE_SIZE * WORKERS  # only the in-flight window went twice
