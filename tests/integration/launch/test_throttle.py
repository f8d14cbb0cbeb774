"""Throttled launches (``max_per_minute``, docs/delivery.md): measured at the push
service, by the simulator's own arrival times, the pushes of a launch come at its rate,
evenly, also when several workers send its batches at once.

The rate is scaled so a test takes seconds, not minutes: 3000 a minute (50 a second) to
1000 subscribers is 20 seconds of sending, counted in 5-second windows, each of which
must hold 250 pushes within 10 %. The audience spans two batches, so two workers share
the launch (in-process: two of the server's four; Celery: two worker processes) and the
rate holds only if they share its send slots."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from pushcamp.testing.process import ServerProcess, WorkerProcess
from pushcamp.testing.simulator import PushServiceSimulator, SimulatedSubscription
from tests.conftest import fresh_database
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    wait_for_launches,
)
from tests.integration.scaled.conftest import own_redis_broker
from tests.integration.scaled.test_celery_runner import (
    PARTNER,
    REDIS_BROKER,
    Setup,
    _batch_workers,
    _wait_ended,
)

RATE = 3000  # a minute
AUDIENCE = 1000  # two batches of 500 ids
WINDOW = 5.0  # seconds
EXPECTED = RATE / 60 * WINDOW  # 250 a window


def _arrivals(sim: PushServiceSimulator, subs: list[SimulatedSubscription]) -> list[float]:
    return sorted(a.arrived_at for s in subs for a in sim.attempt_log(s))


def assert_even(arrivals: list[float]) -> list[int]:
    """Every full window from the first arrival holds EXPECTED pushes within 10 %."""
    assert len(arrivals) == AUDIENCE
    start, counts = arrivals[0], []
    while start + WINDOW <= arrivals[-1]:
        counts.append(sum(1 for t in arrivals if start <= t < start + WINDOW))
        start += WINDOW
    print(f"pushes per {WINDOW:g} s: {counts} (expected {EXPECTED:g})")
    # 20 s of sending: at least three full windows, each at the rate.
    assert len(counts) >= 3, counts
    assert all(abs(n - EXPECTED) <= EXPECTED * 0.1 for n in counts), counts
    return counts


def test_bad_rate_changes_nothing_and_a_rate_is_shown(client: httpx.Client, tenant: Any) -> None:
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, max_per_minute=600),
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text
    [launch] = wait_for_launches(client, tenant, campaign_id)
    assert launch["max_per_minute"] == 600


def test_in_process_runner_keeps_the_rate(
    client: httpx.Client, tenant: Any, db: Any, sim: PushServiceSimulator
) -> None:
    subs = add_subscribers(db, tenant.partner_id, sim, AUDIENCE)
    campaign_id = create_campaign(client, tenant)
    answer = client.post(
        f"/v1/single/{campaign_id}",
        json=launch_body(tenant.partner_id, max_per_minute=RATE),
        headers=tenant.auth,
    )
    assert answer.status_code == 200, answer.text
    [launch] = wait_for_launches(client, tenant, campaign_id, timeout=90)
    assert launch["status"] == "Sent" and launch["sent"] == AUDIENCE
    assert launch["batches_total"] >= 2
    assert_even(_arrivals(sim, subs))


def test_two_celery_workers_keep_the_rate_together(backend: str, tmp_path: Path) -> None:
    if backend != "postgresql":
        pytest.skip("the Celery runner needs PostgreSQL (several processes write)")
    with fresh_database(tmp_path, "pushcamp_throttle") as url, ExitStack() as stack:
        setup = Setup(url, tmp_path)
        stack.callback(setup.db.dispose)
        broker = stack.enter_context(own_redis_broker(REDIS_BROKER))
        sim = stack.enter_context(PushServiceSimulator(seed=11))
        subs = add_subscribers(setup.db, PARTNER, sim, AUDIENCE)
        worker_env = setup.env(broker)
        for i in range(2):
            stack.enter_context(WorkerProcess(url, tmp_path / f"worker{i}.log", worker_env, 1))
        server = stack.enter_context(
            ServerProcess(
                url,
                tmp_path / "server.log",
                env=setup.env(broker, PUSHCAMP_DELIVERY_IN_PROCESS="false"),
            )
        )
        with httpx.Client(base_url=server.url, headers={"Authorization": setup.token}) as api:
            created = api.post(
                "/v1/single",
                json={
                    "partner_id": PARTNER,
                    "title": "slow",
                    "language": "all_ALL",
                    "is_all": True,
                },
            )
            campaign_id = created.json()["campaign_id"]
            body = launch_body(PARTNER, max_per_minute=RATE)
            assert api.post(f"/v1/single/{campaign_id}", json=body).status_code == 200
            launch = _wait_ended(api, campaign_id, timeout=90)
        assert launch["status"] == "Sent" and launch["sent"] == AUDIENCE
        # Both workers sent a batch, at the same time, and still kept the rate together.
        assert len(_batch_workers(setup.db, launch["launch_id"])) == 2
        assert_even(_arrivals(sim, subs))
