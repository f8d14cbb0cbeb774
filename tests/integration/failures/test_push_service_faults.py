"""A push service that fails, through a real server process: 429 with Retry-After as
seconds and as an HTTP date, bursts of 5xx, connections closed or reset without an
answer, and answers slower than the sender's timeout.

Each retry must wait at least what the push service asked (measured at the simulator,
between the arrival of the 429 and of the retry: lower bounds only); after the bound of
tries the message is dropped as ``serviceProviderErrors``; and no subscription is
deactivated for any of it (only 404/410 say a subscription is gone)."""

from __future__ import annotations

import time
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import Fault, PushServiceSimulator
from tests.integration.failures.conftest import (
    Record,
    Setup,
    active_by_endpoint,
    records_by_endpoint,
    start_launch,
    subscribe,
    wait_until_sent,
)

MAX_ATTEMPTS = 3
TIMEOUT = 1.0  # seconds the push service has to answer one request
SERVICE_ERROR = Record("dropped", "serviceProviderErrors", None)


def test_retries_honour_the_hint_then_give_up_and_keep_the_subscriptions(
    own: Setup, tmp_path: Path
) -> None:
    env = {
        "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1",
        "PUSHCAMP_DELIVERY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "PUSHCAMP_DELIVERY_MAX_RETRY_AFTER_SECONDS": "10",
        "PUSHCAMP_DELIVERY_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    with PushServiceSimulator(seed=5) as sim:
        subs = subscribe(own, sim, 30)
        (ra_seconds, ra_date, ra_too_long, burst_recovers, burst, closed, reset, slow) = subs[:8]
        healthy = subs[8:]
        sim.inject(ra_seconds, Fault.too_many_requests(retry_after=2))
        sim.inject(ra_too_long, Fault.too_many_requests(retry_after=3600))  # over the max wait
        sim.inject(burst_recovers, Fault.server_error(502), times=MAX_ATTEMPTS - 1)
        sim.inject(burst, Fault.unavailable(), times=MAX_ATTEMPTS)
        sim.inject(closed, Fault.dropped(), times=MAX_ATTEMPTS)
        sim.inject(reset, Fault.connection_reset(), times=MAX_ATTEMPTS)
        sim.inject(slow, Fault.slow(TIMEOUT + 2), times=MAX_ATTEMPTS)

        with (
            ServerProcess(own.url, tmp_path / "server.log", env=env) as server,
            httpx.Client(base_url=server.url, timeout=30) as c,
        ):
            # An HTTP date 8 s ahead (whole seconds, as HTTP dates are), set just before
            # the launch, so that the 429 is answered well before that date.
            hinted_date = int(time.time()) + 8
            date = formatdate(hinted_date, usegmt=True)
            sim.inject(ra_date, Fault.too_many_requests(retry_after=date))
            campaign_id = start_launch(c, own)
            launch = wait_until_sent(c, own, campaign_id, timeout=120)

        # Retry-After in seconds: the retry came at least 2 s after the 429 arrived.
        first, second = sim.attempt_log(ra_seconds)
        assert (first.status, second.status) == (429, 201)
        assert second.arrived_at - first.arrived_at >= 2 - 0.05
        # As an HTTP date: the 429 came before that date, the retry not before it.
        first, second = sim.attempt_log(ra_date)
        assert (first.status, second.status) == (429, 201)
        assert first.arrived_at < hinted_date - 3  # the hint really asked for a wait
        assert second.arrived_at >= hinted_date - 0.05
        # A wait longer than PUSHCAMP_DELIVERY_MAX_RETRY_AFTER_SECONDS: given up at once.
        assert [a.status for a in sim.attempt_log(ra_too_long)] == [429]
        # A burst shorter than the bound is ridden out; as long as it is, given up.
        assert [a.status for a in sim.attempt_log(burst_recovers)] == [502, 502, 201]
        assert [a.status for a in sim.attempt_log(burst)] == [503] * MAX_ATTEMPTS
        # No answer (None): closed or reset; too late: the timeout, MAX_ATTEMPTS times.
        assert [a.status for a in sim.attempt_log(closed)] == [None] * MAX_ATTEMPTS
        assert [a.status for a in sim.attempt_log(reset)] == [None] * MAX_ATTEMPTS
        assert sim.attempts(slow) == MAX_ATTEMPTS
        for sub in healthy:
            assert [a.status for a in sim.attempt_log(sub)] == [201]

    records = records_by_endpoint(own.db)
    assert len(records) == len(subs) and all(len(r) == 1 for r in records.values())
    for sub in (ra_seconds, ra_date, burst_recovers, *healthy):
        assert records[sub.endpoint][0].state == "sent", sub
    assert records[ra_too_long.endpoint] == [Record("dropped", "serviceProviderErrors", 429)]
    assert records[burst.endpoint] == [Record("dropped", "serviceProviderErrors", 503)]
    for sub in (closed, reset, slow):
        assert records[sub.endpoint] == [SERVICE_ERROR], sub
    # Every subscription is kept: none of these answers says it is gone.
    assert set(active_by_endpoint(own.db).values()) == {True}
    assert (launch["sent"], launch["dropped"]) == (len(subs) - 5, 5)


@pytest.mark.parametrize("kind", ["reset", "closed"])
def test_the_simulator_closes_without_an_answer(kind: str) -> None:
    """The two ways the simulator hangs up, seen by an independent client: an orderly
    close, and a TCP reset (``Fault.connection_reset()``, ECONNRESET)."""
    import socket

    with PushServiceSimulator() as sim:
        sub = sim.subscribe()
        sim.inject(sub, Fault.connection_reset() if kind == "reset" else Fault.dropped())
        host, port = sim.url.removeprefix("http://").split(":")
        path = sub.endpoint.removeprefix(sim.url)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\n\r\nhi".encode()
            )
            if kind == "reset":
                with pytest.raises(ConnectionResetError):
                    sock.recv(1024)
            else:
                assert sock.recv(1024) == b""  # end of stream, no answer
        [attempt] = sim.attempt_log(sub)
        assert attempt.status is None and attempt.arrived_at <= time.time()
