"""Issue 14's launch features under the Celery runner, with real processes: one
``pushcamp serve`` with in-process delivery off (it records launches and publishes their
batches), two ``pushcamp worker`` processes on a Redis broker of this module's own
(a database number nobody else uses, flushed before and after, and a queue of its own),
a fresh database of the backend under test (SQLite or PostgreSQL) and the push-service
simulator.

* a launch scheduled a few seconds ahead (``send_at``) is not sent before its time and is
  sent by the workers after it, each subscriber once (arrival times at the simulator);
* an A/B launch: every subscriber's payload, decrypted with http_ece, carries its arm's
  text, the split is within tolerance, campaign-metrics' per-arm numbers equal what the
  simulator received, and both workers sent some of it;
* webhooks are sent by the workers (the API process runs no dispatcher with a broker):
  a loopback receiver gets ``launch.started`` and ``launch.finished``, signatures checked
  with Python's ``hmac``.

Each test has a partner of its own, so its audience is only its own subscribers."""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pushcamp.services import partners, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess, WorkerProcess
from pushcamp.testing.simulator import Fault, PushServiceSimulator
from tests.conftest import fresh_database
from tests.integration.launch.conftest import add_subscribers, launch_body, received_payload
from tests.integration.launch.test_statistics import TODAY
from tests.integration.scaled.conftest import own_redis_broker
from tests.integration.scaled.test_celery_runner import _batch_workers, _wait_ended
from tests.integration.webhooks.conftest import (  # noqa: F401  (the receivers fixture)
    WEBHOOK_ENV,
    Receiver,
    cli,
    receivers,
    wait_until,
)
from tests.integration.webhooks.test_webhooks import verified

BROKER = os.environ.get("PUSHCAMP_TEST_BROKER_FEATURES_URL", "redis://127.0.0.1:6379/11")
LEAD = 4.0  # how far ahead the scheduled launch is (real seconds waited)

pytestmark = [pytest.mark.slow]


@dataclass
class Cluster:
    url: str
    db: Database
    sim: PushServiceSimulator
    server: ServerProcess
    workers: list[WorkerProcess]
    clients: list[httpx.Client] = field(default_factory=list)

    def partner(self) -> tuple[str, httpx.Client]:
        """A partner of the test's own and an API client with its token."""
        partner_id = f"f{secrets.token_hex(5)}"
        partners.create_partner(self.db, partner_id, "features", 10_000, 10_000)
        token = tokens.create_token(self.db, partner_id)
        client = httpx.Client(
            base_url=self.server.url, headers={"Authorization": token}, timeout=30
        )
        self.clients.append(client)
        return partner_id, client

    def worker_ids(self) -> set[str]:
        return {f"{socket.gethostname()}:{w.pid}" for w in self.workers}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("celery_features")
    queue = f"pushcamp-test-{secrets.token_hex(4)}"
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(directory, "pushcamp_features"))
        db = Database(Settings(database_url=url))
        db.migrate()
        stack.callback(db.dispose)
        broker = stack.enter_context(own_redis_broker(BROKER))
        sim = stack.enter_context(PushServiceSimulator(seed=14, keep_messages=2))
        # Slow answers and few requests in flight: a batch takes about a second, so the
        # other worker is free when the next task is handed out.
        sim.add_fault_rate(Fault(delay=0.05), 1.0)
        env = {
            "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1",
            "PUSHCAMP_BROKER_URL": broker,
            "PUSHCAMP_BROKER_QUEUE": queue,
            "PUSHCAMP_DELIVERY_LEASE_SECONDS": "5",
            **WEBHOOK_ENV,
        }
        workers = [
            stack.enter_context(
                WorkerProcess(
                    url,
                    directory / f"worker{i}.log",
                    {**env, "PUSHCAMP_DELIVERY_PER_HOST": "25"},
                    1,
                )
            )
            for i in range(2)
        ]
        server = stack.enter_context(
            ServerProcess(
                url, directory / "server.log", env={**env, "PUSHCAMP_DELIVERY_IN_PROCESS": "false"}
            )
        )
        made = Cluster(url, db, sim, server, workers)
        yield made
        for client in made.clients:
            client.close()


def _campaign(api: httpx.Client, partner_id: str) -> int:
    created = api.post(
        "/v1/single",
        json={"partner_id": partner_id, "title": "features", "language": "all_ALL", "is_all": True},
    )
    assert created.status_code == 201, created.text
    return int(created.json()["campaign_id"])


def test_a_scheduled_launch_is_sent_by_the_workers_at_its_time(cluster: Cluster) -> None:
    partner_id, api = cluster.partner()
    audience = 1000  # two batches: both workers take part
    subs = add_subscribers(cluster.db, partner_id, cluster.sim, audience)
    campaign_id = _campaign(api, partner_id)
    send_at = (datetime.now(UTC) + timedelta(seconds=LEAD)).replace(microsecond=0)
    answer = api.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(partner_id, send_at=send_at.isoformat()),
    )
    assert answer.status_code == 200, answer.text
    [waiting] = api.get(f"/v1/single/{campaign_id}").json()["launches"]
    assert waiting["status"] == "Scheduled" and waiting["batches_total"] == 0, waiting
    # Several outbox rounds (every second, in three processes) pass before its time.
    while datetime.now(UTC) < send_at - timedelta(seconds=0.5):
        assert not any(cluster.sim.attempt_log(s) for s in subs), "sent early"
        time.sleep(0.2)
    launch = _wait_ended(api, campaign_id, timeout=LEAD + 60)
    assert launch["status"] == "Sent" and launch["sent"] == audience, launch
    arrivals = sorted(a.arrived_at for s in subs for a in cluster.sim.attempt_log(s))
    assert len(arrivals) == audience  # each subscriber once
    assert [len(cluster.sim.messages(s)) for s in subs] == [1] * audience
    # Not a moment early, and started within a few seconds of its time.
    assert arrivals[0] >= send_at.timestamp(), (arrivals[0], send_at)
    started = datetime.fromisoformat(launch["started_at"].replace("Z", "+00:00"))
    assert send_at <= started <= send_at + timedelta(seconds=5), started
    # Sent by the workers (the API process never sends with a broker).
    assert set(_batch_workers(cluster.db, launch["launch_id"])) <= cluster.worker_ids()


def test_an_ab_launch_on_two_workers(cluster: Cluster) -> None:
    partner_id, api = cluster.partner()
    audience = 1000
    subs = add_subscribers(cluster.db, partner_id, cluster.sim, audience)
    campaign_id = _campaign(api, partner_id)
    answer = api.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(
            partner_id,
            ab=[
                {"title": "Arm A", "description": "first text", "split": 30},
                {"title": "Arm B", "description": "second text", "split": 70},
            ],
        ),
    )
    assert answer.status_code == 200, answer.text
    launch = _wait_ended(api, campaign_id)
    assert launch["status"] == "Sent" and launch["sent"] == audience, launch
    metrics = api.post(
        "/v1/statistics/campaign-metrics",
        json={
            "partner_id": partner_id,
            "start_date": TODAY,
            "end_date": TODAY,
            "campaign_id": campaign_id,
        },
    )
    assert metrics.status_code == 200, metrics.text
    payloads = [received_payload(cluster.sim, s) for s in subs]  # one message each
    arms = Counter((p["title"], p["body"]) for p in payloads)
    assert set(arms) == {("Arm A", "first text"), ("Arm B", "second text")}, arms
    # 30/70 of 1000: 300 expected, sd 14.5; 4.5 sd either side.
    assert 235 <= arms[("Arm A", "first text")] <= 365, arms
    variants = metrics.json()["variants"]
    assert [(v["variant"], v["title"], v["split"]) for v in variants] == [
        ("A", "Arm A", 30),
        ("B", "Arm B", 70),
    ]
    for v, text in zip(variants, ("first text", "second text"), strict=True):
        n = arms[(v["title"], text)]
        assert v["targeted"] == v["sent"] == f"{n:,}", v
    # Both workers sent some of it.
    assert set(_batch_workers(cluster.db, launch["launch_id"])) == cluster.worker_ids()


def test_webhooks_fire_from_the_workers(cluster: Cluster, receivers: Any) -> None:  # noqa: F811
    partner_id, api = cluster.partner()
    receiver: Receiver = receivers(lambda n: (200, None))
    done = cli("webhooks", "add", partner_id, receiver.url, database_url=cluster.url)
    assert done.returncode == 0, done.stderr
    secret = str(json.loads(done.stdout)["secret"])
    add_subscribers(cluster.db, partner_id, cluster.sim, 20)
    campaign_id = _campaign(api, partner_id)
    answer = api.post(f"/v1/single/{campaign_id}", json=launch_body(partner_id))
    assert answer.status_code == 200, answer.text
    launch = _wait_ended(api, campaign_id)
    assert launch["status"] == "Sent" and launch["sent"] == 20, launch

    def events() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for request in receiver.received():
            found.extend(verified(request, secret)["events"])
        return found

    wait_until(
        lambda: {"launch.started", "launch.finished"} <= {e["type"] for e in events()},
        timeout=30,
        what="launch.started and launch.finished",
    )
    got = {e["type"]: e for e in events()}
    for kind in ("launch.started", "launch.finished"):
        assert got[kind]["data"]["launch_id"] == launch["launch_id"], got[kind]
    # The API process has no dispatcher under a broker: the workers posted them.
    hook_id = json.loads(done.stdout)["id"]
    by_workers = sum(_delivered(w.log_path, hook_id) for w in cluster.workers)
    assert by_workers >= 1, "no worker logged the delivery"
    assert _delivered(cluster.server.log_path, hook_id) == 0


def _delivered(log: Path, webhook_id: int) -> int:
    """The process's ``webhook_delivered`` log lines for the webhook."""
    count = 0
    for line in log.read_text(encoding="utf-8").splitlines():
        if '"webhook_delivered"' in line:
            record = json.loads(line)
            count += record["event"] == "webhook_delivered" and record["webhook_id"] == webhook_id
    return count
