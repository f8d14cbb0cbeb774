"""Local-time launches and silent hours that defer (docs/delivery.md): a real server
process whose clock is moved (PUSHCAMP_CLOCK_OFFSET_SECONDS) to just before the moments
that matter, subscribers at the push-service simulator in several IANA zones, and what
arrived there, when, and how often. Real waiting is a few seconds per phase."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pushcamp.services import partners, sites, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store.models import Delivery
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import PushServiceSimulator, SimulatedSubscription
from tests.conftest import fresh_database
from tests.integration.launch.conftest import ENDED, add_subscribers, launch_body
from tests.integration.launch.test_launch_api import fields

ENV = {"PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path, "pushcamp_local") as url:
        yield url


def _server(url: str, log: Path, fake_now: datetime) -> tuple[ServerProcess, float]:
    """A server whose clock reads ``fake_now`` now (a second or two of start-up later, a
    little more), and its offset from the real time (arrival times are real)."""
    offset = fake_now.timestamp() - time.time()
    env = {**ENV, "PUSHCAMP_CLOCK_OFFSET_SECONDS": str(offset)}
    return ServerProcess(url, log, env=env), offset


def _arrivals(sim: PushServiceSimulator, subs: list[SimulatedSubscription]) -> list[list[float]]:
    return [[m.received_at for m in sim.messages(s)] for s in subs]


def _launch(c: httpx.Client, partner_id: str, **body: Any) -> int:
    created = c.post(
        "/v1/single",
        json={
            "partner_id": partner_id,
            "title": f"c{time.time_ns()}",
            "language": "all_ALL",
            "is_all": True,
        },
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["campaign_id"])
    answer = c.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(partner_id, include_unengaged=True, **body),
    )
    assert answer.status_code == 200, answer.text
    return campaign_id


def _launch_of(c: httpx.Client, campaign_id: int) -> dict[str, Any]:
    [launch] = c.get(f"/v1/single/{campaign_id}").json()["launches"]
    return launch


def _wait(c: httpx.Client, campaign_id: int, until: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        launch = _launch_of(c, campaign_id)
        if until(launch):
            return launch
        assert time.monotonic() < deadline, f"gave up waiting: {launch}"
        time.sleep(0.2)


def _reasons(db: Database, launch_id: int) -> dict[int, str]:
    with db.read() as conn:
        rows = conn.execute(
            select(Delivery.subscriber_id, Delivery.state, Delivery.reason).where(
                Delivery.launch_id == launch_id
            )
        ).all()
    return {int(r[0]): r[2] or r[1] for r in rows}


@pytest.mark.parametrize(
    "value",
    ["24:00", "7:00", "10:00:00", 600, True, "", "10h"],
)
def test_bad_send_at_local_is_400(client: httpx.Client, tenant: Any, value: object) -> None:
    created = client.post(
        "/v1/single",
        json=tenant.body(title=f"l{time.time_ns()}", language="all_ALL", is_all=True),
        headers=tenant.auth,
    )
    campaign_id = created.json()["campaign_id"]
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, send_at_local=value, send_at_local_window_minutes=0),
        headers=tenant.auth,
    )
    assert fields(answer) == {"send_at_local", "send_at_local_window_minutes"}
    alone = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, send_at_local_window_minutes=30),
        headers=tenant.auth,
    )
    assert fields(alone) == {"send_at_local_window_minutes"}
    assert "needs send_at_local" in alone.text


def test_local_time_across_a_dst_change_each_zone_at_its_own_time_once(
    own_database: str, tmp_path: Path
) -> None:
    """``send_at_local: "02:30"`` recorded at 2030-03-31T00:59:56Z, a second before
    Berlin springs forward (02:00 CET -> 03:00 CEST at 01:00Z): 02:30 does not exist in
    Berlin that day, so Berlin's subscribers get it when the clocks jump (01:00Z). New
    York's 02:30 EDT is 06:30Z: the server is next started at 07:45Z, past its 60-minute
    window, so they are dropped (localTimeMissed), not sent late. Tokyo's 02:30 JST is
    17:30Z, and so is that of a subscriber with no zone (the partner's default zone is
    Asia/Tokyo)."""
    db = Database(Settings(database_url=own_database))
    db.migrate()
    partners.create_partner(db, "local1", "local time", 10_000, 10_000)
    sites.set_audience(db, "local1", default_timezone="Asia/Tokyo")
    auth = {"Authorization": tokens.create_token(db, "local1")}
    log = tmp_path / "server.log"
    with PushServiceSimulator(seed=11) as sim:
        berlin = add_subscribers(db, "local1", sim, 2, timezone="Europe/Berlin")
        new_york = add_subscribers(db, "local1", sim, 1, timezone="America/New_York")
        tokyo = add_subscribers(db, "local1", sim, 1, timezone="Asia/Tokyo")
        nowhere = add_subscribers(db, "local1", sim, 1)  # no zone: the partner's default
        everyone = berlin + new_york + tokyo + nowhere

        server, offset = _server(own_database, log, utc("2030-03-31T00:59:50"))
        with server as first:
            c = httpx.Client(base_url=first.url, headers=auth, timeout=30)
            campaign_id = _launch(c, "local1", send_at_local="02:30")
            launch = _wait(c, campaign_id, lambda x: x["sent"] >= 2)
            time.sleep(1.5)  # room for anything sent too early or twice
            launch = _launch_of(c, campaign_id)
            c.close()
        # Four send instants -> three groups of batches (Tokyo and the default together).
        assert launch["status"] == "Sending" and launch["sent"] == 2
        got = _arrivals(sim, everyone)
        assert [len(x) for x in got] == [1, 1, 0, 0, 0]
        for [arrived] in got[:2]:
            # By the server's clock: not before the jump, and within a few seconds of it.
            moved = arrived + offset
            assert utc("2030-03-31T01:00:00").timestamp() <= moved
            assert moved <= utc("2030-03-31T01:00:06").timestamp()

        server, _ = _server(own_database, log, utc("2030-03-31T07:45:00"))
        with server as second:
            c = httpx.Client(base_url=second.url, headers=auth, timeout=30)
            launch = _wait(c, campaign_id, lambda x: x["dropped"] >= 1)
            time.sleep(1.5)
            launch = _launch_of(c, campaign_id)
            c.close()
        assert launch["status"] == "Sending" and (launch["sent"], launch["dropped"]) == (2, 1)
        assert [len(x) for x in _arrivals(sim, everyone)] == [1, 1, 0, 0, 0]

        server, offset = _server(own_database, log, utc("2030-03-31T17:29:55"))
        with server as third:
            c = httpx.Client(base_url=third.url, headers=auth, timeout=30)
            launch = _wait(c, campaign_id, lambda x: x["status"] in ENDED)
            time.sleep(1.0)
            launch = _launch_of(c, campaign_id)
            c.close()
        assert launch["status"] == "Sent"
        assert (launch["sent"], launch["dropped"]) == (4, 1)
        got = _arrivals(sim, everyone)
        assert [len(x) for x in got] == [1, 1, 0, 1, 1]  # each exactly once
        for [arrived] in got[3:]:
            moved = arrived + offset
            assert utc("2030-03-31T17:30:00").timestamp() <= moved
            assert moved <= utc("2030-03-31T17:30:06").timestamp()
        reasons = _reasons(db, launch["launch_id"])
        assert sorted(reasons.values()) == ["localTimeMissed", "sent", "sent", "sent", "sent"]
    db.dispose()


def test_silent_hours_drop_or_defer(own_database: str, tmp_path: Path) -> None:
    """Silent hours 22:00-07:00; the server's clock at 06:59:42Z. Subscribers in UTC are
    inside them (until 07:00Z), those in Tokyo (15:59) are not. With ``drop`` the UTC
    ones are dropped as silentHours; with ``defer`` they get the push when the window
    ends (07:00Z), once; with ``defer`` and a TTL that ends before 07:00 they are
    dropped as silentHours."""
    db = Database(Settings(database_url=own_database))
    db.migrate()
    partners.create_partner(db, "quiet1", "silent hours", 10_000, 10_000)
    sites.set_audience(db, "quiet1", silent_hours="22:00-07:00")
    auth = {"Authorization": tokens.create_token(db, "quiet1")}
    start = utc("2030-06-01T06:59:42")
    window_end = utc("2030-06-01T07:00:00").timestamp()
    with PushServiceSimulator(seed=12) as sim:
        night = add_subscribers(db, "quiet1", sim, 2, timezone="UTC")
        day = add_subscribers(db, "quiet1", sim, 2, timezone="Asia/Tokyo")
        server, offset = _server(own_database, tmp_path / "server.log", start)
        with server:
            c = httpx.Client(base_url=server.url, headers=auth, timeout=30)
            dropped = _launch(c, "quiet1")
            first = _wait(c, dropped, lambda x: x["status"] in ENDED)
            assert (first["sent"], first["dropped"]) == (2, 2)

            sites.set_audience(db, "quiet1", silent_hours_mode="defer")
            deferred = _launch(c, "quiet1")
            short = _launch(c, "quiet1", ttl=3)  # its TTL ends before 07:00Z
            third = _wait(c, short, lambda x: x["status"] in ENDED)
            second = _wait(c, deferred, lambda x: x["sent"] >= 2)
            assert second["status"] == "Sending"  # the UTC pair is held, not dropped
            assert (second["sent"], second["dropped"]) == (2, 0)
            assert time.time() + offset < window_end  # all this before 07:00Z
            second = _wait(c, deferred, lambda x: x["status"] in ENDED)
            time.sleep(1.0)
            c.close()
        assert (second["sent"], second["dropped"]) == (4, 0)
        assert (third["sent"], third["dropped"]) == (2, 2)
        assert set(_reasons(db, first["launch_id"]).values()) == {"sent", "silentHours"}
        assert set(_reasons(db, third["launch_id"]).values()) == {"sent", "silentHours"}
        # The night pair got one push (the deferred launch), after 07:00Z by the server's
        # clock; the day pair one from each launch.
        for arrivals in _arrivals(sim, night):
            [arrived] = arrivals
            assert window_end <= arrived + offset <= window_end + 6
        assert [len(x) for x in _arrivals(sim, day)] == [3, 3]
        deferred_topic = {m.topic for s in night for m in sim.messages(s)}
        assert deferred_topic == {f"pc-l{second['launch_id']}"}  # ids < 36: one digit
    db.dispose()
