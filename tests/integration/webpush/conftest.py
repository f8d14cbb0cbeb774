"""Fixtures for the Web Push tests: a real push-service simulator on 127.0.0.1 (in a
background thread, fresh per test) and a VAPID identity."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pushcamp.testing.simulator import PushServiceSimulator
from pushcamp.webpush import Vapid


@pytest.fixture
def push_simulator() -> Iterator[PushServiceSimulator]:
    """A running simulator that verifies VAPID and decrypts every message."""
    with PushServiceSimulator(seed=1) as simulator:
        yield simulator


@pytest.fixture
def vapid() -> Vapid:
    """A fresh application-server identity with a real-looking contact."""
    return Vapid.generate("mailto:push-ops@pushcamp.dev")
