"""Scheduled launches (``send_at``, docs/delivery.md): validated, recorded ``Scheduled``
at once with nothing sent, started by the runner within a few seconds of their time,
cancellable until then (the CLI, or deleting the campaign), and — being only rows —
started after a restart. Real waiting is a few seconds at most: a launch 20 days out is
reached by starting the server with its clock moved (PUSHCAMP_CLOCK_OFFSET_SECONDS)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pushcamp.services import partners, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import PushServiceSimulator, SimulatedSubscription
from tests.conftest import fresh_database, run_cli
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    wait_for_launches,
)
from tests.integration.launch.test_launch_api import fields, launch_count

LEAD = 3.0  # how far ahead the tests schedule (real seconds waited)
CLI_LEAD = 8.0  # at least: room for the command line to run first (a second or two)


def _at(seconds: float) -> datetime:
    # Whole seconds: what a sender writes, and easy to compare with arrival times.
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


def _status(client: httpx.Client, tenant: Any, campaign_id: int) -> dict[str, Any]:
    answer = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _arrivals(sim: PushServiceSimulator, subs: list[SimulatedSubscription]) -> list[float]:
    return sorted(a.arrived_at for s in subs for a in sim.attempt_log(s))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2030-05-01T09:00:00", "offset"),  # no offset: ambiguous
        ("2030-05-01", "offset"),
        ("tomorrow", "offset"),
        ("2030-13-01T09:00:00Z", "offset"),
        (1893456000, "offset"),  # epoch seconds are not ISO 8601
        (True, "offset"),
        ("9999-12-31T23:59:59-23:59", "30 days"),  # overflows when moved to UTC
        ("2000-01-01T00:00:00Z", "past"),
        ("x" * 5000, "offset"),
    ],
)
def test_bad_send_at_is_400_and_records_nothing(
    client: httpx.Client, tenant: Any, db: Database, value: object, why: str
) -> None:
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, send_at=value),
        headers=tenant.auth,
    )
    assert fields(answer) == {"send_at"}
    assert why in answer.text
    assert launch_count(db, campaign_id) == 0


def test_send_at_more_than_30_days_ahead_is_400(client: httpx.Client, tenant: Any) -> None:
    campaign_id = create_campaign(client, tenant)
    late = (datetime.now(UTC) + timedelta(days=30, minutes=5)).isoformat()
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, send_at=late),
        headers=tenant.auth,
    )
    assert fields(answer) == {"send_at"}
    # Just inside the window, written with another offset: accepted and Scheduled.
    inside = (datetime.now(UTC) + timedelta(days=29, hours=23)).astimezone(
        datetime.now(UTC).astimezone().tzinfo
    )
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, send_at=inside.isoformat()),
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text
    [launch] = _status(client, tenant, campaign_id)["launches"]
    assert launch["status"] == "Scheduled"
    assert launch["send_at"] == inside.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("value", [0, -5, 1_000_001, "600", 600.0, True, [600], {"n": 1}])
def test_bad_max_per_minute_is_400(client: httpx.Client, tenant: Any, value: object) -> None:
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, max_per_minute=value, send_at="soon"),
        headers=tenant.auth,
    )
    # Every offending field is named at once.
    assert fields(answer) == {"max_per_minute", "send_at"}


def test_scheduled_launch_is_recorded_at_once_and_starts_at_its_time(
    client: httpx.Client, tenant: Any, db: Database, sim: PushServiceSimulator
) -> None:
    subs = add_subscribers(db, tenant.partner_id, sim, 5)
    campaign_id = create_campaign(client, tenant)
    send_at = _at(LEAD)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, send_at=send_at.isoformat()),
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text
    status = _status(client, tenant, campaign_id)
    [launch] = status["launches"]
    assert launch["status"] == "Scheduled"
    assert launch["send_at"] == send_at.isoformat().replace("+00:00", "Z")
    assert launch["started_at"] is None and launch["batches_total"] == 0
    assert status["status"] == "Draft"  # the campaign changes when the launch starts
    # An is_all campaign's scheduled launch is its one launch.
    again = client.post(
        f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
    )
    assert fields(again) == {"campaign_id"}

    [launch] = wait_for_launches(client, tenant, campaign_id, timeout=LEAD + 30)
    assert launch["status"] == "Sent" and launch["sent"] == 5
    arrivals = _arrivals(sim, subs)
    assert len(arrivals) == 5
    # Not a moment early, and within a few seconds of its time (poll_seconds is 1).
    assert min(arrivals) >= send_at.timestamp()
    started = datetime.fromisoformat(launch["started_at"].replace("Z", "+00:00"))
    assert send_at <= started <= send_at + timedelta(seconds=5)
    assert _status(client, tenant, campaign_id)["status"] == "Sent"


def test_cancel_command_stops_a_scheduled_launch(
    client: httpx.Client, tenant: Any, db: Database, database_url: str, sim: PushServiceSimulator
) -> None:
    # No such launch: 3. Timed too: the launch below is due late enough for the command
    # to run first on this machine, however busy (a loaded one takes seconds to start it).
    started = time.monotonic()
    unknown = run_cli("launches", "cancel", "987654321", database_url=database_url, check=False)
    assert unknown.returncode == 3, unknown.stderr
    lead = max(CLI_LEAD, 4 * (time.monotonic() - started))
    subs = add_subscribers(db, tenant.partner_id, sim, 3)
    campaign_id = create_campaign(client, tenant)
    send_at = _at(lead)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, send_at=send_at.isoformat()),
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text
    [launch] = _status(client, tenant, campaign_id)["launches"]
    done = run_cli("launches", "cancel", str(launch["launch_id"]), database_url=database_url)
    assert "cancelled" in done.stderr
    # Not cancellable any more (it has ended): 2.
    twice = run_cli(
        "launches", "cancel", str(launch["launch_id"]), database_url=database_url, check=False
    )
    assert twice.returncode == 2, twice.stderr

    _wait_past(send_at)
    [launch] = _status(client, tenant, campaign_id)["launches"]
    assert launch["status"] == "Stopped" and launch["sent"] == 0
    assert _arrivals(sim, subs) == []
    assert _status(client, tenant, campaign_id)["status"] == "Draft"


def test_cancel_refuses_a_launch_that_has_started(
    client: httpx.Client, tenant: Any, db: Database, database_url: str, sim: PushServiceSimulator
) -> None:
    add_subscribers(db, tenant.partner_id, sim, 2)
    campaign_id = create_campaign(client, tenant)
    client.post(
        f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=tenant.auth
    )
    [launch] = wait_for_launches(client, tenant, campaign_id)
    refused = run_cli(
        "launches", "cancel", str(launch["launch_id"]), database_url=database_url, check=False
    )
    assert refused.returncode == 2 and "not Scheduled" in refused.stderr


def test_deleting_the_campaign_stops_a_scheduled_launch(
    client: httpx.Client, tenant: Any, db: Database, sim: PushServiceSimulator
) -> None:
    subs = add_subscribers(db, tenant.partner_id, sim, 3)
    campaign_id = create_campaign(client, tenant, is_all=True)
    send_at = _at(LEAD)
    client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, send_at=send_at.isoformat()),
        headers=tenant.auth,
    )
    [launch] = _status(client, tenant, campaign_id)["launches"]
    assert launch["status"] == "Scheduled"
    deleted = client.request(
        "DELETE", f"/v1/single/{campaign_id}", json=tenant.body(), headers=tenant.auth
    )
    assert deleted.status_code == 200, deleted.text
    _wait_past(send_at)
    status = _status(client, tenant, campaign_id)
    assert [x["status"] for x in status["launches"]] == ["Stopped"]
    assert _arrivals(sim, subs) == []


def _wait_past(moment: datetime, margin: float = 2.5) -> None:
    """Real waiting, a few seconds: until ``margin`` seconds after ``moment``."""
    left = moment.timestamp() + margin - time.time()
    if left > 0:
        time.sleep(left)


# --- across a restart, with the clock moved ---------------------------------------------


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path, "pushcamp_sched") as url:
        yield url


def test_a_launch_20_days_out_survives_a_restart_and_starts_when_the_clock_gets_there(
    own_database: str, tmp_path: Path
) -> None:
    db = Database(Settings(database_url=own_database))
    db.migrate()
    partners.create_partner(db, "sched1", "scheduling", 10_000, 10_000)
    auth = {"Authorization": tokens.create_token(db, "sched1")}
    env = {"PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1"}
    log = tmp_path / "server.log"
    ahead = timedelta(days=20)
    with PushServiceSimulator(seed=5) as sim:
        subs = add_subscribers(db, "sched1", sim, 4)
        with ServerProcess(own_database, log, env=env) as first:
            c = httpx.Client(base_url=first.url, headers=auth, timeout=30)
            created = c.post(
                "/v1/single",
                json={
                    "partner_id": "sched1",
                    "title": "later",
                    "language": "all_ALL",
                    "is_all": True,
                },
            )
            campaign_id = created.json()["campaign_id"]
            send_at = _at(ahead.total_seconds())
            # include_unengaged: by then (20 days on) the subscribers' engagement is old.
            body = launch_body("sched1", send_at=send_at.isoformat(), include_unengaged=True)
            assert c.post(f"/v1/single/{campaign_id}", json=body).status_code == 200
            time.sleep(2)  # two polls of the scheduler: not due, nothing happens
            [launch] = c.get(f"/v1/single/{campaign_id}").json()["launches"]
            assert launch["status"] == "Scheduled"
            c.close()
        assert _arrivals(sim, subs) == []

        # The same database, a new process whose clock is 20 days and a minute ahead.
        moved = {**env, "PUSHCAMP_CLOCK_OFFSET_SECONDS": str(ahead.total_seconds() + 60)}
        with ServerProcess(own_database, log, env=moved) as second:
            c = httpx.Client(base_url=second.url, headers=auth, timeout=30)
            deadline = time.monotonic() + 30
            while True:
                [launch] = c.get(f"/v1/single/{campaign_id}").json()["launches"]
                if launch["status"] == "Sent":
                    break
                assert time.monotonic() < deadline, f"never started: {launch}"
                time.sleep(0.2)
            c.close()
        assert launch["sent"] == 4
        assert len(_arrivals(sim, subs)) == 4
        # started_at is by pushcamp's clock: after send_at, though the real time is not.
        started = datetime.fromisoformat(launch["started_at"].replace("Z", "+00:00"))
        assert started >= send_at
    db.dispose()
