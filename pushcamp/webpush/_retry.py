"""When to try a message again: exponential backoff with jitter, never sooner than the
push service asked."""

from __future__ import annotations

import random

from pushcamp.webpush._outcome import Outcome, RetryAfter


def retry_delay(
    outcome: Outcome,
    attempt: int,
    *,
    base: float,
    cap: float,
    max_retry_after: float,
    rng: random.Random,
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None to give up now.

    Backoff is ``base * 2**(attempt-1)`` capped at ``cap``, with "equal jitter" (a
    uniform draw from its upper half) so that many messages failing together do not
    return together. A Retry-After is a floor, not a suggestion: we wait that long plus
    up to ``base`` of jitter; a Retry-After above ``max_retry_after`` gives up, since
    holding the message longer would only delay the rest of the launch.
    """
    if not outcome.retryable:
        return None
    backoff = min(cap, base * 2 ** (attempt - 1))
    if isinstance(outcome, RetryAfter) and outcome.seconds is not None:
        if outcome.seconds > max_retry_after:
            return None
        return outcome.seconds + rng.uniform(0, base)
    return backoff / 2 + rng.uniform(0, backoff / 2)
