"""The delivery core's decisions, as pure functions of plain values (table-tested in
tests/unit/test_delivery_decisions.py): which push-service outcome becomes which record,
which subscribers the partner's rules hold back, and what a pause says.

The I/O around them (reading the audience, posting, writing records) is in
:mod:`pushcamp.delivery.core`.
"""

from __future__ import annotations

from datetime import datetime

from pushcamp.domain.launches import (
    DropReason,
    counts_towards_pause,
    frequency_capped,
    in_silent_hours,
    local_minutes,
    should_pause,
)
from pushcamp.domain.local_time import silent_hours_end
from pushcamp.webpush import AuthRejected, Gone, Outcome, Sent, TooLarge

__all__ = [
    "drop_reason",
    "pause_key",
    "pause_text",
    "rule_drop",
    "should_pause",
    "silent_defer_to",
]


def drop_reason(outcome: Outcome, vouched: bool) -> DropReason | None:
    """The drop reason an outcome is recorded with; None: ``sent``.

    Only 404/410 (``Gone``) say a subscription is gone (the caller deactivates it). A
    401/403 from a subscription vouched for says the sender is wrong: provisional
    ``senderRefused``, tried again on resume. Everything else — 400, other 4xx, a
    401/403 from a subscription not vouched for, a redirect, 429/5xx/timeouts after the
    last retry — is ``serviceProviderErrors`` and deactivates nothing."""
    if isinstance(outcome, Sent):
        return None
    if isinstance(outcome, Gone):
        return DropReason.UNSUBSCRIPTIONS
    if isinstance(outcome, TooLarge):
        return DropReason.TOO_LARGE
    if counts_towards_pause(isinstance(outcome, AuthRejected), vouched):
        return DropReason.SENDER_REFUSED
    return DropReason.SERVICE_PROVIDER_ERRORS


def pause_key(outcome: Outcome, vouched: bool, detail: str) -> str | None:
    """The key a refusal that says the sender is wrong is counted under (its status and
    the start of the push service's reason: a pause needs most refusals to agree);
    None when the outcome does not count towards a pause."""
    if not counts_towards_pause(isinstance(outcome, AuthRejected), vouched):
        return None
    status = getattr(outcome, "status", None)
    return f"{status} {detail[:80]}".strip()


def rule_drop(
    now: datetime,
    timezone: str | None,
    sent_last_24h: int,
    *,
    frequency_cap: int | None,
    silent_start: int | None,
    silent_end: int | None,
) -> DropReason | None:
    """Whether the partner's rules hold this subscriber back now, and why: silent hours
    in the subscriber's local time first (a subscriber with no known zone is never
    held back by them), then the cap on pushes per 24 hours. None: send."""
    if silent_start is not None:
        minutes = local_minutes(now, timezone)
        if in_silent_hours(minutes, silent_start, silent_end):
            return DropReason.SILENT_HOURS
    if frequency_capped(sent_last_24h, frequency_cap):
        return DropReason.FREQUENCY_CAPPED
    return None


def silent_defer_to(
    now: datetime,
    timezone: str | None,
    silent_start: int | None,
    silent_end: int | None,
    latest: datetime,
) -> datetime | None:
    """Silent hours that defer (a partner setting): when a subscriber held back by them
    at ``now`` is sent instead, the instant they end in its zone, if that is no later
    than ``latest`` (the launch's start plus its TTL); None: dropped as ``silentHours``."""
    ends = silent_hours_end(now, timezone, silent_start, silent_end)
    if ends is None or ends > latest:
        return None
    return ends


def pause_text(launch_id: int, reason: str, count: int, attempts: int) -> str:
    """The ``paused_reason`` a launch shows: what was refused, why it means the key, and
    the commands that fix it."""
    return (
        f"paused: {count} of {attempts} messages were refused with {reason} by "
        "the push service, from subscriptions that accepted this partner's pushes "
        "before or were imported: the push service no longer accepts the partner's "
        "VAPID key. Put back the key pair these subscriptions were made with "
        f"(pushcamp vapid import), then run: pushcamp launches resume {launch_id}"
    )
