"""classify(): every push-service answer maps to exactly one outcome. The invariant
that matters most: only 404/410 mean "gone" — never a 5xx, 429 or timeout, which would
drop live subscribers."""

from __future__ import annotations

import random

import pytest

from pushcamp.webpush import (
    AuthRejected,
    Gone,
    Outcome,
    Rejected,
    RetryAfter,
    Sent,
    TooLarge,
    Transient,
    classify,
)
from pushcamp.webpush._outcome import parse_retry_after
from pushcamp.webpush._retry import retry_delay

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
IN_90_S = "Tue, 14 Nov 2023 22:14:50 GMT"
IN_THE_PAST = "Tue, 14 Nov 2023 22:00:00 GMT"
REDIRECT_EVIL = "redirect to evil.pushcamp.dev not followed"

TABLE: list[tuple[int | BaseException, dict[str, str], Outcome]] = [
    (201, {}, Sent(201)),
    (202, {}, Sent(202)),
    (200, {}, Sent(200)),  # some services answer 200; accepted all the same
    (404, {}, Gone(404)),
    (410, {}, Gone(410)),
    (413, {}, TooLarge(413)),
    (429, {}, RetryAfter(429, None)),
    (429, {"Retry-After": "7"}, RetryAfter(429, 7.0)),
    (429, {"retry-after": "7"}, RetryAfter(429, 7.0)),  # header names are case-blind
    (429, {"Retry-After": IN_90_S}, RetryAfter(429, 90.0)),
    (429, {"Retry-After": IN_THE_PAST}, RetryAfter(429, 0.0)),
    (429, {"Retry-After": "soon"}, RetryAfter(429, None)),
    (503, {"Retry-After": "30"}, RetryAfter(503, 30.0)),
    (503, {"Retry-After": IN_90_S}, RetryAfter(503, 90.0)),
    (503, {}, Transient(503, "service unavailable")),
    (503, {"Retry-After": "later"}, Transient(503, "service unavailable")),
    (500, {}, Transient(500, "HTTP 500")),
    (502, {}, Transient(502, "HTTP 502")),
    (504, {}, Transient(504, "HTTP 504")),
    (500, {"Retry-After": "5"}, Transient(500, "HTTP 500")),
    (408, {}, Transient(408, "HTTP 408")),
    (TimeoutError(), {}, Transient(None, "timeout")),
    (ConnectionResetError(), {}, Transient(None, "ConnectionResetError")),
    (400, {}, Rejected(400, "HTTP 400")),
    (401, {}, AuthRejected(401, "HTTP 401")),
    (403, {}, AuthRejected(403, "HTTP 403")),
    (405, {}, Rejected(405, "unexpected HTTP 405")),
    # Redirects are never followed: a failure naming where it pointed (host only).
    (301, {"Location": "https://evil.pushcamp.dev/x"}, Rejected(301, REDIRECT_EVIL)),
    (
        302,
        {"location": "http://127.0.0.1:9/steal?t=1"},
        Rejected(302, "redirect to 127.0.0.1 not followed"),
    ),
    (303, {"Location": "https://evil.pushcamp.dev"}, Rejected(303, REDIRECT_EVIL)),
    (307, {"Location": "https://evil.pushcamp.dev/push"}, Rejected(307, REDIRECT_EVIL)),
    (308, {"Location": "https://EVIL.pushcamp.dev:8443/"}, Rejected(308, REDIRECT_EVIL)),
    (300, {"Location": "//evil.pushcamp.dev/a"}, Rejected(300, REDIRECT_EVIL)),
    (304, {}, Rejected(304, "redirect without Location not followed")),
    (
        307,
        {"Location": "/push/elsewhere"},
        Rejected(307, "redirect within the push service not followed"),
    ),
    (
        301,
        {"Location": "http://[::1/"},
        Rejected(301, "redirect to an unreadable Location not followed"),
    ),
]


@pytest.mark.parametrize(("answer", "headers", "expected"), TABLE)
def test_classify(answer: int | BaseException, headers: dict[str, str], expected: Outcome) -> None:
    assert classify(answer, headers, now=NOW) == expected


@pytest.mark.parametrize("status", [*range(200, 600)])
def test_only_404_and_410_are_gone(status: int) -> None:
    assert isinstance(classify(status, {}, now=NOW), Gone) == (status in (404, 410))


def test_retryable_outcomes_are_exactly_retry_after_and_transient() -> None:
    retryable = {type(o) for _, _, o in TABLE if o.retryable}
    assert retryable == {RetryAfter, Transient}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 3 ", 3.0),
        ("-1", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


RNG = random.Random(7)


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5, 10])
@pytest.mark.parametrize("seconds", [0.0, 0.2, 5.0, 120.0])
def test_retry_never_sooner_than_retry_after(attempt: int, seconds: float) -> None:
    delay = retry_delay(
        RetryAfter(429, seconds), attempt, base=0.5, cap=30, max_retry_after=300, rng=RNG
    )
    assert delay is not None and seconds <= delay <= seconds + 0.5


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 8, 20])
def test_backoff_is_exponential_jittered_and_capped(attempt: int) -> None:
    for _ in range(50):
        delay = retry_delay(
            Transient(500, "x"), attempt, base=0.5, cap=30, max_retry_after=300, rng=RNG
        )
        full = min(30, 0.5 * 2 ** (attempt - 1))
        assert delay is not None and full / 2 <= delay <= full


def test_retry_after_beyond_the_bound_gives_up() -> None:
    assert (
        retry_delay(RetryAfter(429, 301), 1, base=0.5, cap=30, max_retry_after=300, rng=RNG) is None
    )


@pytest.mark.parametrize("outcome", [Sent(201), Gone(410), TooLarge(413), Rejected(403, "x")])
def test_final_outcomes_are_never_retried(outcome: Outcome) -> None:
    assert retry_delay(outcome, 1, base=0.5, cap=30, max_retry_after=300, rng=RNG) is None


@pytest.mark.parametrize("status", [*range(300, 400)])
def test_every_redirect_is_a_failure_never_sent_nor_retried(status: int) -> None:
    outcome = classify(status, {"Location": "https://elsewhere.pushcamp.dev/"}, now=NOW)
    assert isinstance(outcome, Rejected) and outcome.status == status
    assert not outcome.retryable
    assert outcome.reason == "redirect to elsewhere.pushcamp.dev not followed"
