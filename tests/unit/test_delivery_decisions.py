"""The delivery core's decisions as tables (delivery/decisions.py): which push-service
outcome becomes which record (only 404/410 deactivate; only a vouched-for 401/403 is a
sender refusal that counts towards a pause), who the partner's rules hold back (silent
hours before the frequency cap, an unknown zone never silent), and the settings under
which nothing would ever send."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pushcamp.delivery.decisions import drop_reason, pause_key, pause_text, rule_drop
from pushcamp.domain.launches import DropReason
from pushcamp.settings import Settings
from pushcamp.webpush import (
    AuthRejected,
    Gone,
    Outcome,
    Rejected,
    RetryAfter,
    Sent,
    TooLarge,
    Transient,
)

R = DropReason


@pytest.mark.parametrize(
    ("outcome", "vouched", "reason"),
    [
        (Sent(201), False, None),
        (Sent(202), True, None),
        (Gone(404), False, R.UNSUBSCRIPTIONS),
        (Gone(410), True, R.UNSUBSCRIPTIONS),
        (TooLarge(413), True, R.TOO_LARGE),
        (TooLarge(None), False, R.TOO_LARGE),
        (AuthRejected(403, "bad key"), True, R.SENDER_REFUSED),
        (AuthRejected(401, "bad jwt"), True, R.SENDER_REFUSED),
        # Anyone can register subscriptions that answer 401/403: not vouched for, never
        # a sender refusal.
        (AuthRejected(403, "other key"), False, R.SERVICE_PROVIDER_ERRORS),
        (Rejected(400, "bad request"), True, R.SERVICE_PROVIDER_ERRORS),
        (Rejected(307, "redirect to x not followed"), True, R.SERVICE_PROVIDER_ERRORS),
        (Rejected(None, "broken keys"), False, R.SERVICE_PROVIDER_ERRORS),
        (RetryAfter(429, 5.0), True, R.SERVICE_PROVIDER_ERRORS),
        (Transient(503, "unavailable"), True, R.SERVICE_PROVIDER_ERRORS),
        (Transient(None, "timeout"), False, R.SERVICE_PROVIDER_ERRORS),
    ],
)
def test_outcome_to_record(outcome: Outcome, vouched: bool, reason: DropReason | None) -> None:
    assert drop_reason(outcome, vouched) == reason


@pytest.mark.parametrize(
    ("outcome", "vouched", "key"),
    [
        (AuthRejected(403, "VapidPkHashMismatch"), True, "403 VapidPkHashMismatch"),
        (AuthRejected(401, ""), True, "401"),
        (AuthRejected(403, "x" * 200), True, "403 " + "x" * 80),
        (AuthRejected(403, "VapidPkHashMismatch"), False, None),
        (Rejected(400, "bad"), True, None),
        (Gone(410), True, None),
        (Sent(201), True, None),
        (Transient(500, "boom"), True, None),
    ],
)
def test_what_counts_towards_a_pause(outcome: Outcome, vouched: bool, key: str | None) -> None:
    detail = getattr(outcome, "reason", "")
    assert pause_key(outcome, vouched, detail) == key


NOON_UTC = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "sent_24h", "cap", "silent", "reason"),
    [
        ("Europe/Istanbul", 0, None, None, None),  # no rules: send
        ("Europe/Istanbul", 5, None, None, None),  # no cap
        ("Europe/Istanbul", 2, 3, None, None),  # under the cap
        ("Europe/Istanbul", 3, 3, None, R.FREQUENCY_CAPPED),  # at the cap
        ("Europe/Istanbul", 0, 0, None, R.FREQUENCY_CAPPED),  # a cap of 0 holds all
        # 15:00 in Istanbul (UTC+3): inside 14:00-16:00, outside 16:00-14:00 (wraps).
        ("Europe/Istanbul", 0, None, (14 * 60, 16 * 60), R.SILENT_HOURS),
        ("Europe/Istanbul", 0, None, (16 * 60, 14 * 60), None),
        ("Europe/Istanbul", 0, None, (15 * 60, 16 * 60), R.SILENT_HOURS),  # start included
        ("Europe/Istanbul", 0, None, (14 * 60, 15 * 60), None),  # end excluded
        # 08:00 in New York (UTC-4 in June): inside a window wrapping midnight.
        ("America/New_York", 0, None, (22 * 60, 9 * 60), R.SILENT_HOURS),
        ("America/New_York", 0, None, (22 * 60, 8 * 60), None),
        # Silent hours come first when both hold.
        ("Europe/Istanbul", 9, 1, (14 * 60, 16 * 60), R.SILENT_HOURS),
        # A subscriber whose zone is unknown is never held back by silent hours...
        (None, 0, None, (0, 23 * 60 + 59), None),
        ("Not/AZone", 0, None, (0, 23 * 60 + 59), None),
        # ...but the cap still applies.
        (None, 4, 4, (0, 23 * 60 + 59), R.FREQUENCY_CAPPED),
        ("Europe/Istanbul", 0, None, (600, 600), None),  # an empty window is off
    ],
)
def test_rules_that_hold_a_subscriber_back(
    zone: str | None,
    sent_24h: int,
    cap: int | None,
    silent: tuple[int, int] | None,
    reason: DropReason | None,
) -> None:
    start, end = silent if silent else (None, None)
    got = rule_drop(NOON_UTC, zone, sent_24h, frequency_cap=cap, silent_start=start, silent_end=end)
    assert got == reason


def test_the_pause_text_names_the_refusal_and_the_fix() -> None:
    text = pause_text(42, "403 VapidPkHashMismatch", 45, 50)
    assert "45 of 50" in text and "403 VapidPkHashMismatch" in text
    assert "pushcamp vapid import" in text and "pushcamp launches resume 42" in text


@pytest.mark.parametrize(
    ("in_process", "broker", "problem"),
    [
        (True, None, None),  # the embedded default
        (False, "redis://127.0.0.1:6379/1", None),
        (False, "amqp://guest:guest@127.0.0.1:5672//", None),
        (True, "rediss://cache.example:6380/0", None),  # the broker wins
        (False, None, "PUSHCAMP_BROKER_URL is unset"),  # nothing would ever send
        (True, "http://127.0.0.1:6379", "must be a redis://"),
        (False, "sqs://", "must be a redis://"),
    ],
)
def test_settings_under_which_nothing_would_send(
    in_process: bool, broker: str | None, problem: str | None
) -> None:
    settings = Settings(delivery_in_process=in_process, broker_url=broker)
    found = settings.delivery_problem()
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
