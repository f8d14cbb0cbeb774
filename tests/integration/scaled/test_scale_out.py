"""The scaled-out layout with real processes: several ``pushcamp serve`` processes that
only record launches, several ``pushcamp worker`` processes that send them, one database,
one Redis broker of the test's own (a ``redis-server`` this module starts, stops and
starts again; never the shared one).

Invariants, counted at the push service (the simulator's attempt log per subscription)
and in the database:

* one launch shared by 2 API and 3 worker processes reaches everyone: one terminal record
  per subscriber, one push per subscriber, every worker finished some of its batches, and
  the status endpoint, the statistics and the push service agree on the count;
* ``kill -9`` of a worker mid-launch: nobody skipped, and what went twice is bounded by the
  dead worker's in-flight window (its threads' pages, ``PAGE_SIZE`` each);
* the broker stopped for 10 s mid-launch (restarted empty): the launch finishes once it is
  back, everyone exactly once recorded;
* a campaign deleted mid-launch: no worker sends another push for it 1 s after the DELETE
  was answered.

The first test's audience is ``PUSHCAMP_TEST_SCALE_AUDIENCE`` (100,000 by default); the
others use a smaller audience of several batches, slowed by the simulator so that the
event happens mid-launch."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pushcamp.domain.subscribers import NewSubscription
from pushcamp.services import partners
from pushcamp.store import Database
from pushcamp.store import subscribers as subs_q
from pushcamp.store.models import Delivery, LaunchBatch
from pushcamp.testing.process import ServerProcess, WorkerProcess
from pushcamp.testing.simulator import Fault, PushServiceSimulator, SimulatedSubscription
from tests.integration.scaled.test_celery_runner import PARTNER, OwnRedis, Setup, _wait_ended

# The scaled-out layout's backend is PostgreSQL (docs/deploy.md): these tests, minutes
# long at 100,000 subscribers, run on the PostgreSQL leg only.
pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

AUDIENCE = int(os.environ.get("PUSHCAMP_TEST_SCALE_AUDIENCE", "100000"))
PAGE_SIZE = 500  # the engine's keyset page: what one worker thread has in hand at most


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    from tests.conftest import fresh_database

    with fresh_database(tmp_path, "pushcamp_scale") as url:
        made = Setup(url, tmp_path)
        yield made
        made.db.dispose()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[OwnRedis]:
    own = OwnRedis(tmp_path)
    own.start()
    try:
        yield own
    finally:
        own.stop()


def _subscribe(
    db: Database, sim: PushServiceSimulator, n: int, chunk: int = 10_000
) -> list[SimulatedSubscription]:
    """``n`` subscriptions at the simulator, stored in bulk through the store."""
    key = partners.vapid_public_key(db, PARTNER)
    made: list[SimulatedSubscription] = []
    now = datetime.now(UTC)
    while len(made) < n:
        part = [sim.subscribe(key) for _ in range(min(chunk, n - len(made)))]
        rows = [
            NewSubscription(endpoint=s.endpoint, p256dh=s.p256dh, auth=s.to_json()["keys"]["auth"])
            for s in part
        ]
        with db.write() as conn:
            subs_q.upsert_subscriptions(conn, PARTNER, rows, now, engaged_at=now)
        made += part
    return made


@dataclass
class Cluster:
    servers: list[ServerProcess] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    def api(self, i: int, setup: Setup) -> httpx.Client:
        return httpx.Client(
            base_url=self.servers[i].url, headers={"Authorization": setup.token}, timeout=30
        )


@contextmanager
def _cluster(
    setup: Setup,
    broker: str,
    *,
    apis: int,
    workers: int,
    concurrency: int,
    worker_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    made = Cluster()
    with ExitStack() as stack:
        env = setup.env(broker, PUSHCAMP_BROKER_REPUBLISH_SECONDS="5", **(worker_env or {}))
        for i in range(workers):
            made.workers.append(
                stack.enter_context(
                    WorkerProcess(setup.url, setup.directory / f"worker{i}.log", env, concurrency)
                )
            )
        for i in range(apis):
            made.servers.append(
                stack.enter_context(
                    ServerProcess(
                        setup.url,
                        setup.directory / f"server{i}.log",
                        env=setup.env(
                            broker,
                            PUSHCAMP_DELIVERY_IN_PROCESS="false",
                            PUSHCAMP_BROKER_REPUBLISH_SECONDS="5",
                            PUSHCAMP_BROKER_TIMEOUT_SECONDS="1",
                        ),
                    )
                )
            )
        yield made


def _pushes(sim: PushServiceSimulator, subs: list[SimulatedSubscription]) -> list[int]:
    """Push requests accepted (201) per subscription, in the order of ``subs``."""
    return [sum(1 for a in sim.attempt_log(s) if a.status == 201) for s in subs]


def _records(db: Database, launch_id: int) -> tuple[int, int, set[str]]:
    with db.read() as conn:
        rows = conn.execute(
            select(Delivery.subscriber_id, Delivery.state).where(Delivery.launch_id == launch_id)
        ).all()
    return len(rows), len({r.subscriber_id for r in rows}), {r.state for r in rows}


def _done_by(db: Database, launch_id: int) -> Counter[str]:
    """Done batches by the process (``host:pid``) that finished each."""
    with db.read() as conn:
        rows = conn.execute(
            select(LaunchBatch.status, LaunchBatch.claimed_by).where(
                LaunchBatch.launch_id == launch_id
            )
        ).all()
    assert {r.status for r in rows} == {"done"}, Counter(r.status for r in rows)
    return Counter(":".join(str(r.claimed_by).split(":")[:2]) for r in rows)


def _claimed_by(db: Database, pid: int) -> list[int]:
    """Batches held right now by the worker process ``pid``."""
    prefix = f"{socket.gethostname()}:{pid}:"
    with db.read() as conn:
        rows = conn.execute(
            select(LaunchBatch.id, LaunchBatch.claimed_by).where(LaunchBatch.status == "claimed")
        ).all()
    return [r.id for r in rows if str(r.claimed_by).startswith(prefix)]


def _wait_for(what: str, condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_apis_and_three_workers_send_one_launch_to_everyone_once(
    setup: Setup, broker: OwnRedis
) -> None:
    # Decryption and VAPID checks off at the simulator (they are checked by the smaller
    # tests): on 2 cores, its CPU goes to the processes under test.
    with PushServiceSimulator(decrypt=False, verify_vapid=False, keep_messages=1) as sim:
        subs = _subscribe(setup.db, sim, AUDIENCE)
        # A request unanswered after the timeout is sent again (at least once): with 2,400
        # requests in flight to one simulator on a loaded 2-core machine, 10 s is not
        # always enough, and a retried push the simulator had accepted would count twice.
        # What this test is about is every batch sent by one worker only.
        slow_machine = {"PUSHCAMP_DELIVERY_TIMEOUT_SECONDS": "60"}
        with _cluster(
            setup, broker.url, apis=2, workers=3, concurrency=4, worker_env=slow_machine
        ) as cluster:
            with cluster.api(0, setup) as first, cluster.api(1, setup) as second:
                campaign_id = setup.launch(first)
                launch = _wait_ended(second, campaign_id, timeout=600)
                today = datetime.now(UTC).date()
                metrics = second.post(
                    "/v1/statistics/campaign-metrics",
                    json={
                        "partner_id": PARTNER,
                        "campaign_id": campaign_id,
                        "start_date": (today - timedelta(days=1)).isoformat(),
                        "end_date": (today + timedelta(days=1)).isoformat(),
                    },
                )
            pids = {f"{socket.gethostname()}:{w.pid}" for w in cluster.workers}
        accepted = sim.stats()["accepted"]
        pushes = _pushes(sim, subs)
    assert launch["status"] == "Sent", launch
    assert launch["targeted"] == launch["sent"] == AUDIENCE == accepted, (launch, accepted)
    assert metrics.status_code == 200, metrics.text
    overview = metrics.json()["overview"]
    assert overview["targeted"]["sent"] == f"{AUDIENCE:,}", overview
    records, distinct, states = _records(setup.db, launch["launch_id"])
    assert records == distinct == AUDIENCE and states == {"sent"}
    assert Counter(pushes) == {1: AUDIENCE}  # everyone once, nobody twice
    by_process = _done_by(setup.db, launch["launch_id"])
    assert set(by_process) == pids, by_process  # every worker did a share, the APIs none


def _slow_launch(
    setup: Setup, sim: PushServiceSimulator, audience: int
) -> list[SimulatedSubscription]:
    subs = _subscribe(setup.db, sim, audience)
    sim.add_fault_rate(Fault(delay=0.02), 1.0)  # every answer 20 ms late: seconds per batch
    return subs


def test_a_worker_killed_mid_launch_skips_nobody(setup: Setup, broker: OwnRedis) -> None:
    audience, concurrency = 6000, 2  # 12 batches
    worker_env = {"PUSHCAMP_DELIVERY_PER_HOST": "20", "PUSHCAMP_DELIVERY_LEASE_SECONDS": "3"}
    with PushServiceSimulator(seed=21, keep_messages=4) as sim:
        subs = _slow_launch(setup, sim, audience)
        with _cluster(
            setup, broker.url, apis=1, workers=3, concurrency=concurrency, worker_env=worker_env
        ) as cluster:
            victim = cluster.workers[0]
            with cluster.api(0, setup) as api:
                campaign_id = setup.launch(api)
                # Mid-launch, and mid-batch for the victim.
                _wait_for("a quarter sent", lambda: sim.stats()["accepted"] >= audience // 4)
                _wait_for("the victim holding a batch", lambda: _claimed_by(setup.db, victim.pid))
                held = _claimed_by(setup.db, victim.pid)
                os.kill(victim.pid, signal.SIGKILL)
                victim.stop()
                launch = _wait_ended(api, campaign_id, timeout=180)
        pushes = _pushes(sim, subs)
    assert launch["status"] == "Sent", launch
    assert launch["sent"] == audience, launch
    records, distinct, states = _records(setup.db, launch["launch_id"])
    assert records == distinct == audience and states == {"sent"}
    assert 0 not in pushes  # nobody skipped
    twice = sum(n - 1 for n in pushes if n > 1)
    assert twice <= PAGE_SIZE * concurrency, twice  # only the dead worker's window
    # The batches it held were finished by the others.
    by_process = _done_by(setup.db, launch["launch_id"])
    with setup.db.read() as conn:
        finishers = {
            str(c)
            for c in conn.execute(
                select(LaunchBatch.claimed_by).where(LaunchBatch.id.in_(held))
            ).scalars()
        }
    assert held and not any(f.split(":")[1] == str(victim.pid) for f in finishers), finishers
    survivors = {f"{socket.gethostname()}:{w.pid}" for w in cluster.workers[1:]}
    assert survivors <= set(by_process), by_process  # the survivors did the rest


def test_the_broker_stopped_10s_mid_launch(setup: Setup, broker: OwnRedis) -> None:
    audience = 6000
    worker_env = {"PUSHCAMP_DELIVERY_PER_HOST": "20"}
    with PushServiceSimulator(seed=22, keep_messages=4) as sim:
        subs = _slow_launch(setup, sim, audience)
        with _cluster(
            setup, broker.url, apis=2, workers=2, concurrency=2, worker_env=worker_env
        ) as cluster:
            with cluster.api(0, setup) as api, cluster.api(1, setup) as other:
                campaign_id = setup.launch(api)
                _wait_for("a sixth sent", lambda: sim.stats()["accepted"] >= audience // 6)
                broker.stop()
                stopped_at = sim.stats()["accepted"]
                time.sleep(10)
                assert other.get("/readyz").status_code == 503
                [meanwhile] = other.get(f"/v1/single/{campaign_id}").json()["launches"]
                broker.start()  # empty: the queued tasks are gone with it
                launch = _wait_ended(other, campaign_id, timeout=180)
            assert all(w.proc is not None and w.proc.poll() is None for w in cluster.workers)
        pushes = _pushes(sim, subs)
    assert stopped_at < audience and meanwhile["status"] != "Sent", meanwhile
    assert launch["status"] == "Sent" and launch["sent"] == audience, launch
    records, distinct, states = _records(setup.db, launch["launch_id"])
    assert records == distinct == audience and states == {"sent"}
    assert Counter(pushes) == {1: audience}  # nobody skipped, nobody twice


def test_a_campaign_deleted_mid_launch_stops_every_worker_within_a_second(
    setup: Setup, broker: OwnRedis
) -> None:
    audience = 6000
    worker_env = {"PUSHCAMP_DELIVERY_PER_HOST": "20"}
    with PushServiceSimulator(seed=23, keep_messages=4) as sim:
        subs = _slow_launch(setup, sim, audience)
        with (
            _cluster(
                setup, broker.url, apis=2, workers=3, concurrency=2, worker_env=worker_env
            ) as cluster,
            cluster.api(0, setup) as api,
            cluster.api(1, setup) as other,
        ):
            campaign_id = setup.launch(api)
            _wait_for("a sixth sent", lambda: sim.stats()["accepted"] >= audience // 6)
            # Every worker is sending it when it is deleted.
            _wait_for(
                "every worker holding a batch",
                lambda: all(_claimed_by(setup.db, w.pid) for w in cluster.workers),
            )
            deleted = other.request(
                "DELETE", f"/v1/single/{campaign_id}", json={"partner_id": PARTNER}
            )
            answered_at = time.time()
            assert deleted.status_code == 200, deleted.text
            launch = _wait_ended(api, campaign_id)
            time.sleep(3)  # anything still coming would arrive now
        arrivals = [a.arrived_at for s in subs for a in sim.attempt_log(s)]
    assert launch["status"] == "Stopped", launch
    assert len(arrivals) < audience  # it did stop
    late = [t - answered_at for t in arrivals if t > answered_at]
    assert max(late, default=0.0) <= 1.0, sorted(late)[-5:]
