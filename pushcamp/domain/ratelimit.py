"""GCRA (generic cell rate algorithm): a rolling-window rate limit in one number per key.

``limit`` requests per ``window`` seconds, with a burst of up to ``limit``: each request
pushes the key's theoretical arrival time (TAT) forward by ``window / limit``; a request is
refused while the TAT would lie more than ``window`` in the future. Unlike a per-minute
counter it never lets 2x the limit through around a minute boundary, and unlike a
sliding log it stores one float per key whatever the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one request against one budget."""

    allowed: bool
    limit: int
    window: float
    remaining: int
    # Seconds until the budget is whole again.
    reset_after: float
    # Seconds until a refused request would be allowed (0 when allowed).
    retry_after: float


def gcra(tat: float | None, now: float, limit: int, window: float) -> tuple[RateDecision, float]:
    """Decide one request. Returns the decision and the key's new TAT (unchanged if refused)."""
    interval = window / limit
    base = now if tat is None or tat < now else tat
    new_tat = base + interval
    allow_at = new_tat - window
    if now < allow_at:
        held = base
        return (
            RateDecision(
                allowed=False,
                limit=limit,
                window=window,
                remaining=0,
                reset_after=max(0.0, held - now),
                retry_after=allow_at - now,
            ),
            held,
        )
    remaining = int(math.floor((window - (new_tat - now)) / interval + 1e-9))
    return (
        RateDecision(
            allowed=True,
            limit=limit,
            window=window,
            remaining=max(0, min(limit - 1, remaining)),
            reset_after=new_tat - now,
            retry_after=0.0,
        ),
        new_tat,
    )
