"""The Celery runner with real processes: ``pushcamp serve`` with in-process delivery off
and ``PUSHCAMP_BROKER_URL`` set only records launches and publishes their batches (the
outbox); ``pushcamp worker`` processes on Redis or RabbitMQ send them.

Invariants: a launch ends Sent with exactly one record per subscriber, each message
received once, the work shared by the workers; the events URL is the one fixed at
launch time, not a worker's; a launch recorded while the broker is down is sent when it
returns; nothing starts under settings where nothing would ever send.

Each test has its own database, its own broker queue and (Redis) a database number of
its own, flushed before and after; RabbitMQ's shared server is never stopped."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select

from pushcamp.services import partners, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store.models import Delivery, LaunchBatch
from pushcamp.testing.process import ServerProcess, WorkerProcess
from pushcamp.testing.simulator import Fault, PushServiceSimulator
from tests.conftest import fresh_database
from tests.integration.launch.conftest import add_subscribers, launch_body
from tests.integration.scaled.conftest import own_redis_broker, unavailable

REDIS_BROKER = os.environ.get("PUSHCAMP_TEST_BROKER_REDIS_URL", "redis://127.0.0.1:6379/13")
AMQP_BROKER = os.environ.get("PUSHCAMP_TEST_BROKER_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
PUBLIC_URL = "https://push.pushcamp.test"
PARTNER = "scaled1"

pytestmark = pytest.mark.slow


@contextmanager
def _amqp_broker(queue: str) -> Iterator[str]:
    from kombu import Connection

    try:
        with Connection(AMQP_BROKER, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        unavailable(f"no RabbitMQ answers at {AMQP_BROKER} ({exc})")
    try:
        yield AMQP_BROKER
    finally:
        with Connection(AMQP_BROKER, connect_timeout=3) as conn:
            conn.default_channel.queue_delete(queue)


@contextmanager
def _broker(kind: str, queue: str) -> Iterator[str]:
    if kind == "redis":
        with own_redis_broker(REDIS_BROKER) as url:
            yield url
    else:
        with _amqp_broker(queue) as url:
            yield url


class Setup:
    """A fresh database with one partner and its token; env for the processes."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url = url
        self.directory = directory
        self.db = Database(Settings(database_url=url))
        self.db.migrate()
        partners.create_partner(self.db, PARTNER, "scaled", 10_000, 10_000)
        self.token = tokens.create_token(self.db, PARTNER)
        self.queue = f"pushcamp-test-{secrets.token_hex(4)}"

    def env(self, broker: str, **extra: str) -> dict[str, str]:
        return {
            "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1",
            "PUSHCAMP_BROKER_URL": broker,
            "PUSHCAMP_BROKER_QUEUE": self.queue,
            "PUSHCAMP_DELIVERY_LEASE_SECONDS": "5",
            **extra,
        }

    def launch(self, api: httpx.Client) -> int:
        created = api.post(
            "/v1/single",
            json={"partner_id": PARTNER, "title": "scaled", "language": "all_ALL", "is_all": True},
        )
        assert created.status_code == 201, created.text
        campaign_id = int(created.json()["campaign_id"])
        launched = api.post(f"/v1/single/{campaign_id}", json=launch_body(PARTNER))
        assert launched.status_code == 200, launched.text
        return campaign_id


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with fresh_database(tmp_path, "pushcamp_celery") as url:
        made = Setup(url, tmp_path)
        yield made
        made.db.dispose()


def _wait_ended(api: httpx.Client, campaign_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        [launch] = api.get(f"/v1/single/{campaign_id}").json()["launches"]
        if launch["status"] in ("Sent", "Paused", "Stopped", "Failed"):
            return dict(launch)
        assert time.monotonic() < deadline, f"the launch did not end: {launch}"
        time.sleep(0.2)


def _records(db: Database, launch_id: int) -> list[Any]:
    with db.read() as conn:
        return list(
            conn.execute(
                select(Delivery.subscriber_id, Delivery.state).where(
                    Delivery.launch_id == launch_id
                )
            ).all()
        )


def _batch_workers(db: Database, launch_id: int) -> Counter[str]:
    """Done batches by the process (``host:pid``) that finished each."""
    with db.read() as conn:
        rows = conn.execute(
            select(LaunchBatch.status, LaunchBatch.claimed_by).where(
                LaunchBatch.launch_id == launch_id
            )
        ).all()
    assert {r.status for r in rows} == {"done"}
    return Counter(":".join(str(r.claimed_by).split(":")[:2]) for r in rows)


@pytest.mark.parametrize("kind", ["redis", "amqp"])
def test_two_workers_send_a_launch_once_to_everyone(setup: Setup, kind: str) -> None:
    audience = 3000  # 6 batches of 500 ids
    with ExitStack() as stack:
        broker = stack.enter_context(_broker(kind, setup.queue))
        sim = stack.enter_context(PushServiceSimulator(seed=5, keep_messages=4))
        subs = add_subscribers(setup.db, PARTNER, sim, audience)
        # Slow answers and few requests in flight: a batch takes seconds, so every
        # worker is still busy when the next task is handed out.
        sim.add_fault_rate(Fault(delay=0.05), 1.0)
        worker_env = setup.env(broker, PUSHCAMP_DELIVERY_PER_HOST="25")
        workers = [
            stack.enter_context(
                WorkerProcess(setup.url, setup.directory / f"worker{i}.log", worker_env, 2)
            )
            for i in range(2)
        ]
        server = stack.enter_context(
            ServerProcess(
                setup.url,
                setup.directory / "server.log",
                env=setup.env(
                    broker, PUSHCAMP_DELIVERY_IN_PROCESS="false", PUSHCAMP_PUBLIC_URL=PUBLIC_URL
                ),
            )
        )
        with httpx.Client(base_url=server.url, headers={"Authorization": setup.token}) as api:
            ready = api.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["broker"] == "ok"
            campaign_id = setup.launch(api)
            launch = _wait_ended(api, campaign_id)
        assert launch["status"] == "Sent", launch
        assert launch["sent"] == audience
        records = _records(setup.db, launch["launch_id"])
        assert len(records) == audience
        assert len({r.subscriber_id for r in records}) == audience
        assert {r.state for r in records} == {"sent"}
        assert [len(sim.messages(s)) for s in subs] == [1] * audience  # nobody twice
        # Both workers sent some of it; the API process sent nothing.
        by_process = _batch_workers(setup.db, launch["launch_id"])
        assert set(by_process) == {f"{socket.gethostname()}:{w.pid}" for w in workers}
        assert sum(by_process.values()) == 6
        # The events URL is the one fixed when the launch was recorded (the API's public
        # URL), not one a worker made up: the workers were given no PUSHCAMP_PUBLIC_URL.
        payload = json.loads(sim.messages(subs[0])[0].text)
        assert payload["events_url"] == f"{PUBLIC_URL}/v1/events"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    """A redis-server of this test's own, stopped and started again at will."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed")
            return
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def test_a_launch_recorded_while_the_broker_is_down_is_sent_when_it_returns(
    setup: Setup,
) -> None:
    audience = 600
    own = OwnRedis(setup.directory)
    own.start()
    with ExitStack() as stack:
        stack.callback(own.stop)
        sim = stack.enter_context(PushServiceSimulator(seed=6))
        subs = add_subscribers(setup.db, PARTNER, sim, audience)
        stack.enter_context(
            WorkerProcess(setup.url, setup.directory / "worker.log", setup.env(own.url), 2)
        )
        server = stack.enter_context(
            ServerProcess(
                setup.url,
                setup.directory / "server.log",
                env=setup.env(
                    own.url,
                    PUSHCAMP_DELIVERY_IN_PROCESS="false",
                    PUSHCAMP_BROKER_TIMEOUT_SECONDS="1",
                ),
            )
        )
        with httpx.Client(
            base_url=server.url, headers={"Authorization": setup.token}, timeout=30
        ) as api:
            assert api.get("/readyz").status_code == 200
            own.stop()
            down = api.get("/readyz")
            assert down.status_code == 503, down.text
            assert down.json()["checks"] == {"database": "ok", "broker": "unreachable"}
            campaign_id = setup.launch(api)  # recorded: 200 without a broker
            time.sleep(3)  # several outbox rounds fail meanwhile
            [waiting] = api.get(f"/v1/single/{campaign_id}").json()["launches"]
            assert waiting["status"] == "Queued" and waiting["targeted"] == 0, waiting
            assert sim.stats()["requests"] == 0
            own.start()  # empty: nothing of the launch survived anywhere but the database
            launch = _wait_ended(api, campaign_id)
            assert api.get("/readyz").status_code == 200
        assert launch["status"] == "Sent" and launch["sent"] == audience, launch
        assert len(_records(setup.db, launch["launch_id"])) == audience
        assert [len(sim.messages(s)) for s in subs] == [1] * audience


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_nothing_starts_where_nothing_would_send(tmp_path: Path, command: str) -> None:
    """In-process delivery off and no broker: nothing would ever send a launch, so
    neither the server nor a worker starts (exit 2, the reason on stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHCAMP_")} | {
        "PUSHCAMP_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "PUSHCAMP_DELIVERY_IN_PROCESS": "false",
    }
    args = ["--port", "0"] if command == "serve" else []
    done = subprocess.run(
        [sys.executable, "-m", "pushcamp", command, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "PUSHCAMP_BROKER_URL" in done.stderr
    assert "listening" not in done.stdout


def test_workers_pause_a_launch_together(setup: Setup) -> None:
    """Subscriptions vouched for refuse the partner's key (403): the pause counters are
    in the database, so the launch pauses once for everyone and every worker stops its
    batch, instead of each burning its share of the audience."""
    from sqlalchemy import update

    from pushcamp.store.models import Launch, Subscriber
    from pushcamp.webpush import Vapid

    audience = 1500  # 3 batches, all sent at once by the 2 workers
    with ExitStack() as stack:
        broker = stack.enter_context(own_redis_broker(REDIS_BROKER))
        sim = stack.enter_context(PushServiceSimulator(seed=8))
        other_key = Vapid.generate("mailto:push@pushcamp.dev").public_key
        add_subscribers(setup.db, PARTNER, sim, audience, application_server_key=other_key)
        with setup.db.write() as conn:  # imported by the operator: vouched for
            conn.execute(update(Subscriber).values(imported_at=Subscriber.created_at))
        sim.add_fault_rate(Fault(delay=0.05), 1.0)
        env = setup.env(broker, PUSHCAMP_DELIVERY_PER_HOST="10")
        logs = [setup.directory / f"worker{i}.log" for i in range(2)]
        for log in logs:
            stack.enter_context(WorkerProcess(setup.url, log, env, 2))
        server = stack.enter_context(
            ServerProcess(
                setup.url,
                setup.directory / "server.log",
                env=setup.env(broker, PUSHCAMP_DELIVERY_IN_PROCESS="false"),
            )
        )
        with httpx.Client(base_url=server.url, headers={"Authorization": setup.token}) as api:
            campaign_id = setup.launch(api)
            launch = _wait_ended(api, campaign_id)
            assert launch["status"] == "Paused", launch
            assert "403" in launch["paused_reason"]
            time.sleep(2)  # what was in flight is answered and recorded
            [after] = api.get(f"/v1/single/{campaign_id}").json()["launches"]
        # Posted: the pause threshold and what was in flight, not the audience.
        posted = sim.stats()["requests"]
        assert 50 <= posted < audience // 2, posted
        assert after["targeted"] == posted  # every answer recorded, none sent twice
        with setup.db.read() as conn:
            attempts = conn.execute(
                select(Launch.attempts).where(Launch.id == launch["launch_id"])
            ).scalar_one()
        assert attempts == posted  # one counter for every worker's messages
        for log in logs:  # each worker sent some and gave its batch back
            text = log.read_text(encoding="utf-8")
            assert '"event": "batch_given_back"' in text, log
