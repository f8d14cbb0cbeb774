"""Local-time launches and silent hours that defer (docs/delivery.md) under the Celery
runner, with real processes: one ``pushcamp serve`` with in-process delivery off (it
records launches and publishes due batches), two ``pushcamp worker`` processes on a Redis
broker of this module's own (a database number nobody else uses, flushed before and
after, and a queue of its own), a fresh database of the backend under test and the
push-service simulator.

All three processes get the same PUSHCAMP_CLOCK_OFFSET_SECONDS, chosen so that their
clock reaches a whole minute ``B`` (2030-06-01T10:00:00Z, or the minute after if the
processes were slow to start) a few seconds after everything is set up. Both scenarios
are recorded before ``B`` and looked at after it, so the module waits for one minute
boundary only:

* a launch with ``send_at_local`` set to ``B``'s wall time in Europe/Berlin, to
  subscribers in Europe/Berlin, America/New_York and Asia/Tokyo and one without a zone
  (the partner's default zone is Europe/Berlin): nothing arrives before ``B``; at ``B``
  the Berlin and default-zone subscribers get it, each once, from the workers; the
  others' batches stay pending and unpublished (their 12:00 is hours away);
* silent hours ending at ``B`` (UTC) with ``--silent-hours-mode defer``: subscribers in
  UTC are held when the launch runs before ``B`` and get the push once, at ``B``, from a
  worker; those in Asia/Tokyo (outside the silent hours) get it at once.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from pushcamp.services import partners, sites, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store.models import Delivery, LaunchBatch
from pushcamp.testing.process import ServerProcess, WorkerProcess
from pushcamp.testing.simulator import PushServiceSimulator, SimulatedSubscription
from tests.conftest import fresh_database
from tests.integration.launch.conftest import add_subscribers, launch_body
from tests.integration.scaled.conftest import own_redis_broker

BROKER = os.environ.get("PUSHCAMP_TEST_BROKER_LOCAL_TIME_URL", "redis://127.0.0.1:6379/12")
TARGET = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)  # B, by the processes' clock
STARTUP = 15.0  # real seconds allowed for the three processes to start
MARGIN = 6.0  # real seconds between the last launch recorded and B, at least
SETTLE = 2.5  # real seconds after the last expected arrival, for anything sent twice
BERLIN = ZoneInfo("Europe/Berlin")

pytestmark = [pytest.mark.slow]


@dataclass
class Scene:
    db: Database
    sim: PushServiceSimulator
    workers: list[WorkerProcess]
    offset: float  # the processes' clock minus the real one, seconds
    boundary: datetime  # B, by the processes' clock
    # The local-time launch.
    local_launch: dict[str, Any]
    local_before: dict[str, Any]  # as the API showed it just before B
    in_berlin: list[SimulatedSubscription]  # Europe/Berlin and the default-zone one
    elsewhere: list[SimulatedSubscription]  # New York and Tokyo
    # The launch with silent hours that defer.
    quiet_launch: dict[str, Any]
    quiet_before: dict[str, Any]
    night: list[SimulatedSubscription]  # in UTC, in silent hours until B
    day: list[SimulatedSubscription]  # in Asia/Tokyo, outside them
    early: list[str]  # what arrived before B that should not have

    def real(self, moment: datetime) -> float:
        """``moment`` of the processes' clock as a real timestamp (arrival times)."""
        return moment.timestamp() - self.offset

    def worker_ids(self) -> set[str]:
        return {f"{socket.gethostname()}:{w.pid}" for w in self.workers}


def _partner(db: Database, url: str, name: str) -> tuple[str, httpx.Client]:
    partner_id = f"{name}{secrets.token_hex(4)}"
    partners.create_partner(db, partner_id, name, 10_000, 10_000)
    token = tokens.create_token(db, partner_id)
    return partner_id, httpx.Client(base_url=url, headers={"Authorization": token}, timeout=30)


def _launch(api: httpx.Client, partner_id: str, **body: Any) -> int:
    created = api.post(
        "/v1/single",
        json={"partner_id": partner_id, "title": "local", "language": "all_ALL", "is_all": True},
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["campaign_id"])
    # Subscribers were engaged by the real clock, years before the processes' one.
    body = launch_body(partner_id, include_unengaged=True, **body)
    answer = api.post(f"/v1/single/{campaign_id}", json=body)
    assert answer.status_code == 200, answer.text
    return campaign_id


def _launch_of(api: httpx.Client, campaign_id: int) -> dict[str, Any]:
    [launch] = api.get(f"/v1/single/{campaign_id}").json()["launches"]
    return dict(launch)


def _wait(api: httpx.Client, campaign_id: int, until: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        launch = _launch_of(api, campaign_id)
        if until(launch) or time.monotonic() > deadline:
            return launch
        time.sleep(0.2)


def _received(sim: PushServiceSimulator, subs: list[SimulatedSubscription]) -> int:
    return sum(len(sim.attempt_log(s)) for s in subs)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    directory = tmp_path_factory.mktemp("celery_local_time")
    queue = f"pushcamp-test-{secrets.token_hex(4)}"
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(directory, "pushcamp_local_celery"))
        db = Database(Settings(database_url=url))
        db.migrate()
        stack.callback(db.dispose)
        broker = stack.enter_context(own_redis_broker(BROKER))
        sim = stack.enter_context(PushServiceSimulator(seed=26, keep_messages=2))
        # The processes' clock reads TARGET STARTUP + MARGIN real seconds from now.
        offset = TARGET.timestamp() - (time.time() + STARTUP + MARGIN)
        env = {
            "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1",
            "PUSHCAMP_BROKER_URL": broker,
            "PUSHCAMP_BROKER_QUEUE": queue,
            "PUSHCAMP_DELIVERY_LEASE_SECONDS": "5",
            "PUSHCAMP_CLOCK_OFFSET_SECONDS": repr(offset),
        }
        workers = [
            stack.enter_context(WorkerProcess(url, directory / f"worker{i}.log", env, 1))
            for i in range(2)
        ]
        server = stack.enter_context(
            ServerProcess(
                url, directory / "server.log", env={**env, "PUSHCAMP_DELIVERY_IN_PROCESS": "false"}
            )
        )
        # B: the first whole minute of the processes' clock at least MARGIN seconds
        # ahead (TARGET unless they were slow to start).
        soon = datetime.fromtimestamp(time.time() + offset + MARGIN, UTC)
        boundary = soon.replace(second=0, microsecond=0)
        if boundary < soon:
            boundary += timedelta(minutes=1)

        # A local-time launch at B's wall time in Berlin (12:00 on TARGET).
        local_id, local_api = _partner(db, server.url, "lt")
        stack.callback(local_api.close)
        sites.set_audience(db, local_id, default_timezone="Europe/Berlin")
        in_berlin = add_subscribers(db, local_id, sim, 600, timezone="Europe/Berlin")
        in_berlin += add_subscribers(db, local_id, sim, 1)  # no zone: the partner's default
        elsewhere = add_subscribers(db, local_id, sim, 3, timezone="America/New_York")
        elsewhere += add_subscribers(db, local_id, sim, 3, timezone="Asia/Tokyo")
        wall = boundary.astimezone(BERLIN).strftime("%H:%M")
        local_campaign = _launch(local_api, local_id, send_at_local=wall)

        # Silent hours that end at B in UTC, deferring; a launch that runs before B.
        quiet_id, quiet_api = _partner(db, server.url, "sh")
        stack.callback(quiet_api.close)
        start = (boundary - timedelta(hours=12)).strftime("%H:%M")
        sites.set_audience(
            db,
            quiet_id,
            silent_hours=f"{start}-{boundary:%H:%M}",
            silent_hours_mode="defer",
        )
        night = add_subscribers(db, quiet_id, sim, 5, timezone="UTC")
        day = add_subscribers(db, quiet_id, sim, 5, timezone="Asia/Tokyo")
        quiet_campaign = _launch(quiet_api, quiet_id)

        # Until shortly before B: the day subscribers get theirs, nobody else anything.
        early: list[str] = []
        last_look = datetime.fromtimestamp(boundary.timestamp() - offset - 0.5, UTC)
        while datetime.now(UTC) < last_look:
            for name, subs in (("local-time", in_berlin + elsewhere), ("silent", night)):
                if _received(sim, subs) and not any(e.startswith(name) for e in early):
                    early.append(f"{name} at {time.time() + offset:.3f}")
            time.sleep(0.2)
        local_before = _launch_of(local_api, local_campaign)
        quiet_before = _launch_of(quiet_api, quiet_campaign)
        assert time.time() + offset < boundary.timestamp(), "the looks before B came late"

        # After B: the expected arrivals, then a moment for anything sent twice.
        local_launch = _wait(local_api, local_campaign, lambda x: x["sent"] >= 601, 30)
        quiet_launch = _wait(quiet_api, quiet_campaign, lambda x: x["status"] == "Sent", 30)
        time.sleep(SETTLE)
        local_launch = _launch_of(local_api, local_campaign)
        quiet_launch = _launch_of(quiet_api, quiet_campaign)
        yield Scene(
            db=db,
            sim=sim,
            workers=workers,
            offset=offset,
            boundary=boundary,
            local_launch=local_launch,
            local_before=local_before,
            in_berlin=in_berlin,
            elsewhere=elsewhere,
            quiet_launch=quiet_launch,
            quiet_before=quiet_before,
            night=night,
            day=day,
            early=early,
        )


def _batches(db: Database, launch_id: int) -> list[Any]:
    with db.read() as conn:
        return list(
            conn.execute(
                select(
                    LaunchBatch.status,
                    LaunchBatch.claimed_by,
                    LaunchBatch.not_before,
                    LaunchBatch.published_at,
                ).where(LaunchBatch.launch_id == launch_id)
            ).all()
        )


def _sender(claimed_by: object) -> str:
    return ":".join(str(claimed_by).split(":")[:2])  # host:pid


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _arrivals(sim: PushServiceSimulator, subs: list[SimulatedSubscription]) -> list[list[float]]:
    return [[a.arrived_at for a in sim.attempt_log(s)] for s in subs]


def test_a_local_time_launch_reaches_one_zone_at_its_time_from_the_workers(
    scene: Scene,
) -> None:
    assert not [e for e in scene.early if e.startswith("local-time")], scene.early
    # Before B the launch waits for its first group, with no batch handed over yet.
    assert scene.local_before["status"] == "Queued", scene.local_before
    assert scene.local_before["sent"] == 0, scene.local_before
    launch = scene.local_launch
    # At B: Berlin's 600 and the one without a zone (the partner's default zone), each
    # once; New York's and Tokyo's local time is hours away.
    assert launch["status"] == "Sending", launch
    assert (launch["sent"], launch["dropped"]) == (601, 0), launch
    got = _arrivals(scene.sim, scene.in_berlin)
    assert [len(x) for x in got] == [1] * 601
    assert [len(scene.sim.messages(s)) for s in scene.in_berlin] == [1] * 601
    assert _arrivals(scene.sim, scene.elsewhere) == [[]] * 6
    due = scene.real(scene.boundary)
    first, last = min(x[0] for x in got), max(x[0] for x in got)
    assert due <= first, (first, due)  # not a moment early
    assert last <= due + 10, (last, due)  # and within a few seconds of it
    # Sent by the workers; the later groups are neither claimed nor handed to the broker.
    batches = _batches(scene.db, launch["launch_id"])
    done = [b for b in batches if b.status == "done"]
    waiting = [b for b in batches if b.status != "done"]
    assert len(done) == 2 and {_sender(b.claimed_by) for b in done} <= scene.worker_ids()
    assert {_as_utc(b.not_before) for b in done} == {scene.boundary}
    assert len(waiting) == 2, batches  # New York's group and Tokyo's
    for b in waiting:
        assert b.status == "pending" and b.published_at is None, b
        assert _as_utc(b.not_before) > scene.boundary + timedelta(hours=1), b


def test_silent_hours_that_defer_are_sent_once_when_they_end_by_a_worker(
    scene: Scene,
) -> None:
    assert not [e for e in scene.early if e.startswith("silent")], scene.early
    # Before B: the day subscribers had theirs, the night ones are held (not dropped).
    before = scene.quiet_before
    assert before["status"] == "Sending", before
    assert (before["sent"], before["dropped"]) == (5, 0), before
    launch = scene.quiet_launch
    assert launch["status"] == "Sent", launch
    assert (launch["sent"], launch["dropped"]) == (10, 0), launch
    due = scene.real(scene.boundary)
    for [arrived] in _arrivals(scene.sim, scene.day):
        assert arrived < due
    for [arrived] in _arrivals(scene.sim, scene.night):  # each once
        assert due <= arrived <= due + 10, (arrived, due)
    with scene.db.read() as conn:
        states = conn.execute(
            select(Delivery.state).where(Delivery.launch_id == launch["launch_id"])
        ).scalars()
        assert sorted(states) == ["sent"] * 10
    # The held subscribers' batch (not_before B) was sent by a worker, as was the first.
    batches = _batches(scene.db, launch["launch_id"])
    assert {b.status for b in batches} == {"done"}, batches
    assert {_sender(b.claimed_by) for b in batches} <= scene.worker_ids()
    assert [_as_utc(b.not_before) for b in batches if b.not_before is not None] == [scene.boundary]
