"""Webhooks: the rules for pushing a partner's events to its own systems (no I/O).

* the event types and the batch body ``{"events": [{"id", "type", "created_at",
  "data"}]}``;
* the signature: ``Pushcamp-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
  f"{t}.{body}")>`` (a receiver recomputes it and refuses old timestamps, so a captured
  request cannot be replayed later);
* the retry schedule: exponential backoff with jitter, given up (dead-lettered) once the
  first attempt is older than the maximum age;
* the URL rules (no SSRF), the same as for push endpoints: https only, no credentials
  or fragment, no private, loopback or link-local address, whether written as a literal
  or resolved from the host name at send time, unless the operator listed the host
  (``PUSHCAMP_WEBHOOK_ALLOWED_HOSTS``; plain http only for such a host).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pushcamp.timeutil import iso

__all__ = [
    "EVENT_TYPES",
    "MAX_URL_CHARS",
    "MAX_WEBHOOKS",
    "SIGNATURE_HEADER",
    "address_problem",
    "backoff_delay",
    "batch_body",
    "parse_schedule",
    "signature_header",
    "url_problem",
]

LAUNCH_STARTED = "launch.started"
LAUNCH_FINISHED = "launch.finished"
LAUNCH_PAUSED = "launch.paused"
DELIVERED = "notification.delivered"
CLICKED = "notification.clicked"
UNSUBSCRIBED = "subscriber.unsubscribed"
GONE = "subscriber.gone"

EVENT_TYPES = (
    LAUNCH_STARTED,
    LAUNCH_FINISHED,
    LAUNCH_PAUSED,
    DELIVERED,
    CLICKED,
    UNSUBSCRIBED,
    GONE,
)

SIGNATURE_HEADER = "Pushcamp-Signature"
MAX_URL_CHARS = 2048
# Webhooks one partner may register.
MAX_WEBHOOKS = 10


# --- body and signature -----------------------------------------------------------------


def event_json(
    event_id: str, event_type: str, created_at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": event_type,
        "created_at": iso(created_at),
        "data": data,
    }


def batch_body(events: Iterable[dict[str, Any]]) -> bytes:
    """The bytes POSTed (and signed): compact JSON, UTF-8."""
    return json.dumps({"events": list(events)}, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Pushcamp-Signature`` value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


# --- retries ----------------------------------------------------------------------------


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"10,30,120"`` → the delays (seconds) before the 2nd, 3rd, ... attempt; the last
    repeats. Raises ValueError on anything but positive numbers."""
    delays = tuple(float(part) for part in text.split(",") if part.strip())
    if not delays or any(not d > 0 or d != d or d == float("inf") for d in delays):
        raise ValueError("must be comma-separated positive numbers of seconds")
    return delays


def backoff_delay(failures: int, schedule: Sequence[float], jitter: float) -> float:
    """The wait after the ``failures``-th failed attempt (1: the first): the schedule's
    entry (its last one once past its end) stretched by ``jitter`` × 25 %, ``jitter`` a
    random number in [0, 1), so receivers that failed together are not retried in step.
    Never shorter than the schedule's entry."""
    base = schedule[min(max(failures, 1), len(schedule)) - 1]
    return base * (1 + 0.25 * jitter)


# --- URL rules (no SSRF) ----------------------------------------------------------------


def _netlocs(host: str, port: int | None) -> tuple[str, ...]:
    return (host, f"{host}:{port}") if port is not None else (host,)


def is_listed(url: str, allowed: frozenset[str]) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    return any(n in allowed for n in _netlocs(host, parts.port))


def url_problem(url: str, allowed: frozenset[str] = frozenset()) -> str | None:
    """Why pushcamp must not POST events to ``url``, or None when it may. ``allowed``:
    the hosts (``host`` or ``host:port``) the operator listed."""
    if len(url) > MAX_URL_CHARS:
        return f"must be at most {MAX_URL_CHARS} characters"
    if not url.isascii() or not url.isprintable() or " " in url:
        return "must not contain whitespace, control or non-ASCII characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "must be a URL"
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("https", "http") or not host:
        return "must be an https URL"
    if parts.username is not None or parts.password is not None or parts.fragment:
        return "must not carry credentials or a fragment"
    listed = any(n in allowed for n in _netlocs(host, port))
    if listed:
        return None
    if parts.scheme == "http":
        return (
            "must be an https URL (plain http only for a host listed in "
            "PUSHCAMP_WEBHOOK_ALLOWED_HOSTS)"
        )
    if host == "localhost" or host.endswith(".localhost"):
        return "must not point at a private, loopback or link-local address"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None  # a name: its addresses are checked when sending
    return address_problem(str(address))


def address_problem(address: str) -> str | None:
    """Why a resolved address must not be posted to (private, loopback, link-local,
    multicast, reserved: anything not globally routable), or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        return "must not point at a private, loopback or link-local address"
    return None
