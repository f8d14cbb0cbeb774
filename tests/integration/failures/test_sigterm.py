"""SIGTERM in the middle of a launch to 3,000 subscribers (what systemd, Docker or
Kubernetes send to stop a server): nothing more is posted, the pushes already posted are
answered and recorded before the process exits, and their batches are given back. So
every push the push service accepted before the exit has its record; after a restart the
launch completes, nobody skipped, and nobody gets it twice."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest

from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import Fault, PushServiceSimulator
from tests.integration.failures.conftest import (
    Setup,
    records_by_endpoint,
    start_launch,
    subscribe,
    wait_for_requests,
    wait_until_sent,
)

AUDIENCE = 3_000

pytestmark = pytest.mark.slow


def test_sigterm_finishes_what_is_in_flight_and_a_restart_resumes(
    own: Setup, tmp_path: Path
) -> None:
    env = {"PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1", "PUSHCAMP_DELIVERY_LEASE_SECONDS": "3"}
    log = tmp_path / "server.log"
    with PushServiceSimulator(seed=4, keep_messages=4) as sim:
        subs = subscribe(own, sim, AUDIENCE)
        # Every answer 200 ms late: at the signal, up to PUSHCAMP_DELIVERY_PER_HOST (200)
        # pushes are waiting for theirs.
        sim.add_fault_rate(Fault.slow(0.2), 1.0)
        first = ServerProcess(own.url, log, env=env).start()
        with httpx.Client(base_url=first.url, timeout=30) as c:
            campaign_id = start_launch(c, own)
        wait_for_requests(sim, AUDIENCE // 5)
        in_flight_at_signal = sim.stats()["in_flight"]
        first.stop()  # SIGTERM, then wait for the exit (SIGKILL only after 15 s)
        assert first.proc is not None
        # Exited by itself after a graceful shutdown (uvicorn ends by re-raising the
        # signal it caught: -15), not killed by ServerProcess's SIGKILL fallback (-9).
        assert first.proc.returncode in (0, -signal.SIGTERM)
        assert "Application shutdown complete." in log.read_text()
        accepted = {s.endpoint for s in subs if sim.messages(s)}
        records = records_by_endpoint(own.db)
        assert in_flight_at_signal > 0  # there was something in flight to finish
        assert 0 < len(accepted) < AUDIENCE
        assert sim.stats()["in_flight"] == 0  # nothing left waiting for an answer
        # Every push the push service accepted has its record: none will be sent again.
        assert accepted <= {e for e, r in records.items() if r[0].state == "sent"}

        with (
            ServerProcess(own.url, log, env=env) as second,
            httpx.Client(base_url=second.url, timeout=30) as c,
        ):
            launch = wait_until_sent(c, own, campaign_id)

        received = Counter({s.endpoint: len(sim.messages(s)) for s in subs})
    records = records_by_endpoint(own.db)
    assert len(records) == AUDIENCE and all(len(r) == 1 for r in records.values())
    assert launch["sent"] == AUDIENCE
    assert set(received.values()) == {1}  # nobody skipped, nobody twice
    assert "Traceback" not in log.read_text()
