"""pushcamp's one clock: the wall time, in UTC, for everything that decides by time
(when a scheduled launch is due, a throttled launch's send slots, leases, engagement
windows, statistics days). The store's ``utcnow`` reads it, so every layer shares it.

``PUSHCAMP_CLOCK_OFFSET_SECONDS`` (a testing aid only, never for production) moves this
clock by that many seconds (a float, may be negative) in the process that reads it: a
test starts a server 30 days ahead to see a launch scheduled 30 days out become due,
without waiting. Tests in one process use :func:`set_offset` instead.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta

__all__ = ["OFFSET_ENV", "now", "offset", "set_offset"]

OFFSET_ENV = "PUSHCAMP_CLOCK_OFFSET_SECONDS"


def _from_env() -> timedelta:
    raw = os.environ.get(OFFSET_ENV, "").strip()
    if not raw:
        return timedelta(0)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or abs(seconds) > 100 * 365 * 86400:
        raise ValueError(f"{OFFSET_ENV} must be a number of seconds, got {raw!r}")
    return timedelta(seconds=seconds)


_offset = _from_env()


def now() -> datetime:
    """The current time (timezone-aware UTC), moved by the testing offset if any."""
    return datetime.now(UTC) + _offset


def offset() -> timedelta:
    return _offset


def set_offset(seconds: float) -> None:
    """Move this process's clock (tests only): ``seconds`` from the real time."""
    global _offset
    _offset = timedelta(seconds=seconds)
