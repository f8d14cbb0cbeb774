"""What a push service's answer means for one message: a closed set, decided in one
pure function, :func:`classify`.

The decision that matters most is which answers remove a subscriber. Only 404 and 410
do (RFC 8030 section 7.3: the subscription is gone). Deleting on any other failure — a
5xx, a 429, a timeout — would silently lose live subscribers whenever a push service has
a bad minute; those are retried instead, and a 400/401/403 points at our own request
(bad VAPID key, malformed headers), not at the subscriber.

A redirect (3xx) is never followed: push services do not redirect, and following one
would send the encrypted message (307/308) or a request (301/302/303) wherever the
answer points. It is a :class:`Rejected` failure that names where it pointed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import ClassVar
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Outcome:
    """Base of every outcome. ``label`` names it in metrics and statistics."""

    label: ClassVar[str] = "outcome"
    #: Worth sending again (after a delay) rather than reporting now.
    retryable: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Sent(Outcome):
    """Accepted by the push service (201/202) — accepted, not yet delivered."""

    label: ClassVar[str] = "sent"
    status: int


@dataclass(frozen=True, slots=True)
class Gone(Outcome):
    """The subscription no longer exists (404/410): deactivate it, never send again."""

    label: ClassVar[str] = "gone"
    status: int


@dataclass(frozen=True, slots=True)
class TooLarge(Outcome):
    """The message is too large (413, or refused before sending when ``status`` is None)."""

    label: ClassVar[str] = "too_large"
    status: int | None


@dataclass(frozen=True, slots=True)
class RetryAfter(Outcome):
    """The push service asks us to slow down (429, or 503 with Retry-After).

    ``seconds`` is the wait it asked for, None when it named none.
    """

    label: ClassVar[str] = "retry_after"
    retryable: ClassVar[bool] = True
    status: int
    seconds: float | None


@dataclass(frozen=True, slots=True)
class Transient(Outcome):
    """A failure that may pass: another 5xx, 408, a timeout, a dropped connection."""

    label: ClassVar[str] = "transient"
    retryable: ClassVar[bool] = True
    status: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Rejected(Outcome):
    """The push service refused our request (400, other 4xx) or redirected it (3xx, never
    followed): fix the sender or the endpoint, not a retry. Also used, with ``status``
    None, for a message that could not be built (for instance a subscription with broken
    keys)."""

    label: ClassVar[str] = "rejected"
    status: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class AuthRejected(Outcome):
    """The push service refused the sender (401/403): the VAPID token or key is not
    accepted for this subscription. When a subscription that has worked before answers
    this, the sender is wrong (a rotated key); a subscription made with another key
    answers it too, so one such answer says nothing about the sender on its own."""

    label: ClassVar[str] = "auth_rejected"
    status: int
    reason: str


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()  # plain dicts are case-sensitive; HTTP header names are not
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


_HOST_LIMIT = 100  # characters of a redirect's target host kept in the reason


def _redirect_reason(location: str | None) -> str:
    """``redirect to <host> not followed``; the host only (a Location's path and query
    may carry tokens), or what stands in for it when there is none."""
    if not location or not location.strip():
        return "redirect without Location not followed"
    try:
        parts = urlsplit(location.strip())
        host = parts.hostname
    except ValueError:
        return "redirect to an unreadable Location not followed"
    if not host:
        return "redirect within the push service not followed"
    return f"redirect to {host[:_HOST_LIMIT]} not followed"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value — delta-seconds or an HTTP date — or
    None when absent or unreadable. A date in the past means "now" (0)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means the same
        return None
    return max(0.0, when.timestamp() - now)


# Outcomes are immutable: the usual answers' are made once, not per push.
_SENT = {status: Sent(status) for status in (200, 201, 202, 204)}


def classify(
    answer: int | BaseException,
    headers: Mapping[str, str] | None = None,
    *,
    now: float | None = None,
) -> Outcome:
    """Classify a push service's answer: an HTTP status with its headers, or the
    exception that stood in for an answer (timeout, reset connection).

    ``now`` (seconds since the epoch) resolves an HTTP-date Retry-After; it defaults to
    the current time and is a parameter so the function stays pure under test.
    """
    if isinstance(answer, BaseException):
        kind = "timeout" if isinstance(answer, TimeoutError) else type(answer).__name__
        return Transient(status=None, reason=kind)
    status = answer
    headers = headers or {}
    if 200 <= status < 300:
        return _SENT.get(status) or Sent(status)
    if status in (404, 410):
        return Gone(status)
    if status == 413:
        return TooLarge(status)
    if status == 429 or status == 503:
        current = time.time() if now is None else now
        seconds = parse_retry_after(_header(headers, "Retry-After"), current)
        if status == 429 or seconds is not None:
            return RetryAfter(status, seconds)
        return Transient(status, "service unavailable")
    if status == 408 or 500 <= status < 600:
        return Transient(status, f"HTTP {status}")
    if 300 <= status < 400:
        return Rejected(status, _redirect_reason(_header(headers, "Location")))
    if status in (401, 403):
        return AuthRejected(status, f"HTTP {status}")
    if status == 400:
        return Rejected(status, f"HTTP {status}")
    return Rejected(status, f"unexpected HTTP {status}")
