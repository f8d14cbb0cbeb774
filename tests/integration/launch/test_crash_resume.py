"""``kill -9`` the server in the middle of a launch to 10,000 subscribers, start it again:
the launch resumes by itself, every subscriber ends with exactly one delivery record,
nobody is skipped, and the only pushes sent twice are the ones that were in flight —
each carrying the launch's Topic, so a real push service would collapse them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from pushcamp.domain.launches import topic_for
from pushcamp.services import partners, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store.models import Delivery
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import Fault, PushServiceSimulator
from tests.conftest import fresh_database
from tests.integration.launch.conftest import add_subscribers, launch_body

AUDIENCE = 10_000
PAGE_SIZE = 500  # the engine's keyset page: the most that can be in flight per batch
WORKERS = 4  # batches in progress at once (PUSHCAMP_DELIVERY_WORKERS default)

pytestmark = pytest.mark.slow


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[str]:
    """A database of this test's own: no other server's engine may touch its launch."""
    with fresh_database(tmp_path, "pushcamp_crash") as url:
        yield url


def _settled_requests(sim: PushServiceSimulator) -> int:
    """The push requests the simulator has seen once the dead server's last bytes are in:
    requests written to a socket just before the kill are still read (and answered into
    the void) after it, so the count is read when it has stopped moving and nothing is
    in flight."""
    deadline = time.monotonic() + 10
    last = -1
    while True:
        stats = sim.stats()
        if stats["requests"] == last and stats["in_flight"] == 0:
            return last
        assert time.monotonic() < deadline, f"the simulator never settled: {stats}"
        last = stats["requests"]
        time.sleep(0.25)


def test_kill_9_mid_launch_resumes_without_skipping_anyone(
    own_database: str, tmp_path: Path
) -> None:
    db = Database(Settings(database_url=own_database))
    db.migrate()
    partners.create_partner(db, "crash1", "crash test", 10_000, 10_000)
    token = tokens.create_token(db, "crash1")
    env = {
        "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1",
        # PostgreSQL: the dead worker's claims are taken again when their lease runs out.
        "PUSHCAMP_DELIVERY_LEASE_SECONDS": "3",
    }
    log = tmp_path / "server.log"
    with PushServiceSimulator(seed=3, keep_messages=4) as sim:
        subs = add_subscribers(db, "crash1", sim, AUDIENCE)
        sim.add_fault_rate(Fault(delay=0.05), 1.0)  # a slow push service: 50 ms per answer
        first = ServerProcess(own_database, log, env=env).start()
        auth = {"Authorization": token}
        with httpx.Client(base_url=first.url, headers=auth, timeout=30) as c:
            created = c.post(
                "/v1/single",
                json={
                    "partner_id": "crash1",
                    "title": "crash",
                    "language": "all_ALL",
                    "is_all": True,
                },
            )
            campaign_id = created.json()["campaign_id"]
            assert (
                c.post(f"/v1/single/{campaign_id}", json=launch_body("crash1")).status_code == 200
            )
            deadline = time.monotonic() + 60
            while sim.stats()["requests"] < AUDIENCE // 4:
                assert time.monotonic() < deadline, "the launch did not get going"
                time.sleep(0.02)
        first.stop(kill=True)  # SIGKILL: no shutdown, no last flush
        seen_at_kill = _settled_requests(sim)
        with db.read() as conn:
            recorded_at_kill = conn.execute(select(func.count()).select_from(Delivery)).scalar_one()
        assert 0 < seen_at_kill < AUDIENCE
        assert recorded_at_kill <= seen_at_kill  # records only after an answer

        second = ServerProcess(own_database, log, env=env).start()
        try:
            with httpx.Client(base_url=second.url, headers=auth, timeout=30) as c:
                deadline = time.monotonic() + 120
                while True:
                    [launch] = c.get(f"/v1/single/{campaign_id}").json()["launches"]
                    if launch["status"] == "Sent":
                        break
                    assert time.monotonic() < deadline, f"the launch did not resume: {launch}"
                    time.sleep(0.2)
        finally:
            second.stop()

        with db.read() as conn:
            records = conn.execute(
                select(Delivery.subscriber_id, Delivery.state).where(
                    Delivery.launch_id == launch["launch_id"]
                )
            ).all()
        assert len(records) == AUDIENCE  # exactly one terminal record each...
        assert len({r.subscriber_id for r in records}) == AUDIENCE  # ...for everyone
        assert {r.state for r in records} == {"sent"}
        assert launch["sent"] == AUDIENCE

        received = Counter({s.id: len(sim.messages(s)) for s in subs})
        assert min(received.values()) == 1  # nobody skipped
        twice = [sid for sid, n in received.items() if n > 1]
        print(f"seen at kill {seen_at_kill}, recorded {recorded_at_kill}, sent twice {len(twice)}")
        assert max(received.values()) <= 2
        # Only what was in flight at the kill went twice: at most a page per worker.
        assert len(twice) <= PAGE_SIZE * WORKERS
        assert len(twice) <= seen_at_kill - recorded_at_kill
        topic = topic_for(launch["launch_id"])
        by_id = {s.id: s for s in subs}
        for sid in twice:
            assert {m.topic for m in sim.messages(by_id[sid])} == {topic}
    db.dispose()
