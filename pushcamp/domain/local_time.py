"""Local wall-clock times in IANA time zones: when it is next ``10:00`` somewhere, what
a daylight-saving gap or repeat does to that, and when a subscriber's silent hours end.

Pure: no database, no clock (``now`` is always passed in, timezone-aware or naive UTC).
The rules (docs/delivery.md, "Local-time launches"):

* the next occurrence is the first instant at or after ``now`` whose local wall time is
  the one asked for: within 24 hours (25 on a day the clocks go back);
* a wall time that does not exist that day (the spring-forward gap, e.g. 02:30 in
  Europe/Berlin on the last Sunday of March) is sent at the first valid instant after
  it, the moment the clocks jump (03:00 local);
* a wall time that happens twice (the fall-back repeat) is its first occurrence, once.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

__all__ = [
    "WALL_TIME",
    "next_wall_time",
    "parse_wall_time",
    "resolve_zone",
    "send_groups",
    "silent_hours_end",
    "zone_or_none",
]

WALL_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def parse_wall_time(value: str) -> int | None:
    """``"HH:MM"`` (24-hour, two digits each) as minutes after midnight; None if not."""
    match = WALL_TIME.fullmatch(value)
    if match is None:
        return None
    return int(match[1]) * 60 + int(match[2])


@lru_cache(maxsize=1024)
def zone_or_none(name: str | None) -> zoneinfo.ZoneInfo | None:
    """The IANA zone ``name``, or None when it is empty, unknown or not a zone key."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # Unknown name, a path-like key, a directory such as "America".
        return None


def resolve_zone(name: str | None, default: str | None) -> tzinfo:
    """The subscriber's zone; its partner's default zone when the subscriber's is
    unknown (NULL or not an IANA name); UTC when that is unknown too."""
    return zone_or_none(name) or zone_or_none(default) or UTC


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _instant(day: date, minutes: int, zone: tzinfo) -> datetime:
    """The UTC instant at which the wall clock in ``zone`` reads ``day`` + ``minutes``:
    its first occurrence when it happens twice, the end of the gap when it does not
    happen at all."""
    wall = datetime.combine(day, time(minutes // 60, minutes % 60))
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        # Exists (fold=0 is the earlier of two occurrences in a repeat).
        later = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
        return min(first, later)
    # In a gap: the clocks jump over ``wall`` somewhere between the two readings of it.
    # The first instant whose wall time is past ``wall`` is that jump (second precision;
    # zone transitions fall on whole seconds).
    lo = min(first, wall.replace(tzinfo=zone, fold=1).astimezone(UTC))
    hi = max(first, wall.replace(tzinfo=zone, fold=1).astimezone(UTC))
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        mid = mid.replace(microsecond=0)
        if mid <= lo:
            mid = lo + timedelta(seconds=1)
        if mid.astimezone(zone).replace(tzinfo=None) > wall:
            hi = mid
        else:
            lo = mid
    return hi


def next_wall_time(now: datetime, minutes: int, zone: tzinfo) -> datetime:
    """The first instant (UTC) at or after ``now`` at which it is ``minutes`` after
    midnight on the wall clocks of ``zone`` (gaps and repeats as the module says)."""
    if not 0 <= minutes < 24 * 60:
        raise ValueError("minutes must be from 0 to 1439")
    now = _as_utc(now)
    today = now.astimezone(zone).date()
    for offset in (-1, 0, 1, 2):
        candidate = _instant(today + timedelta(days=offset), minutes, zone)
        if candidate >= now:
            return candidate
    raise AssertionError("unreachable: a wall time recurs within two days")


def silent_hours_end(
    now: datetime, zone_name: str | None, start: int | None, end: int | None
) -> datetime | None:
    """When the silent hours ``[start, end)`` (minutes after local midnight, wrapping
    midnight when ``start > end``) that hold a subscriber back at ``now`` end, in UTC:
    the next time the subscriber's wall clock reads ``end``. None when they are not in
    silent hours now (unknown zone, silent hours off or an empty window)."""
    zone = zone_or_none(zone_name)
    if zone is None or start is None or end is None or start == end:
        return None
    local = _as_utc(now).astimezone(zone)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    return next_wall_time(now, end, zone)


def send_groups(
    now: datetime, minutes: int, zones: list[str | None], default: str | None
) -> tuple[datetime, dict[datetime, list[str]]]:
    """A local-time launch's audience by send instant: the instant of the partner's
    default zone (for subscribers whose zone is unknown, and for every known zone that
    shares it), and the other instants with the zone names that send then."""
    default_at = next_wall_time(now, minutes, resolve_zone(None, default))
    others: dict[datetime, list[str]] = {}
    for name in zones:
        zone = zone_or_none(name)
        if zone is None or name is None:
            continue  # unknown: the default zone's group
        at = next_wall_time(now, minutes, zone)
        if at != default_at:
            others.setdefault(at, []).append(name)
    return default_at, others
