"""A partner's site: the browser origins allowed to call the public subscriber endpoints
(CORS), and the audience rules (engagement window, frequency cap, silent hours).

Origins are compared in the one form browsers send in the ``Origin`` header (RFC 6454):
lower-case scheme and host, the port only when it is not the scheme's default, no path.
Stored origins are brought to that form when they are set, so the per-request check is a
plain set lookup.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from pushcamp.errors import InvalidRequest

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
_ORIGIN = re.compile(r"(?i)(https?)://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]+))?/?", re.ASCII)
MAX_ORIGINS = 50
MAX_ENGAGEMENT_DAYS = 3650
MAX_FREQUENCY_CAP = 1000
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def origin_of(value: str) -> str | None:
    """``value`` (an Origin header or a typed origin) in canonical form, or None when it
    is not a plain ``scheme://host[:port]`` (``null``, a path, credentials, ...)."""
    match = _ORIGIN.fullmatch(value) if len(value) <= 300 else None
    if match is None:
        return None
    scheme, host, port_text = match[1].lower(), match[2].lower(), match[3]
    if host.startswith("["):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
        host = f"[{address.compressed}]"
    elif not _HOST.fullmatch(host):
        return None
    if port_text is None:
        return f"{scheme}://{host}"
    if len(port_text) > 5 or not 0 < int(port_text) <= 65535:
        return None
    port = int(port_text)
    return f"{scheme}://{host}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{host}:{port}"


def check_origins(values: list[str]) -> list[str]:
    """Validate the origins a partner's site uses, canonical and without duplicates."""
    if len(values) > MAX_ORIGINS:
        raise InvalidRequest.of("origin", f"at most {MAX_ORIGINS} origins")
    out: list[str] = []
    for value in values:
        origin = origin_of(value.strip())
        if origin is None:
            raise InvalidRequest.of(
                "origin", f"{value!r} is not an origin: scheme://host[:port], no path"
            )
        if origin not in out:
            out.append(origin)
    return out


@dataclass(frozen=True, slots=True)
class SilentHours:
    """Minutes after local midnight; ``start > end`` wraps midnight (22:00-07:00)."""

    start: int
    end: int


def parse_silent_hours(value: str) -> SilentHours:
    """``HH:MM-HH:MM`` in the subscriber's local time."""
    start, sep, end = value.strip().partition("-")
    a, b = _CLOCK.fullmatch(start.strip()), _CLOCK.fullmatch(end.strip())
    if not sep or a is None or b is None:
        raise InvalidRequest.of("silent_hours", "must be HH:MM-HH:MM, e.g. 22:00-07:00")
    hours = SilentHours(int(a[1]) * 60 + int(a[2]), int(b[1]) * 60 + int(b[2]))
    if hours.start == hours.end:
        raise InvalidRequest.of("silent_hours", "start and end must differ")
    return hours


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def check_engagement_days(value: int) -> int:
    if not 1 <= value <= MAX_ENGAGEMENT_DAYS:
        raise InvalidRequest.of("engagement_days", f"must be between 1 and {MAX_ENGAGEMENT_DAYS}")
    return value


def check_frequency_cap(value: int) -> int:
    if not 1 <= value <= MAX_FREQUENCY_CAP:
        raise InvalidRequest.of("frequency_cap", f"must be between 1 and {MAX_FREQUENCY_CAP}")
    return value
