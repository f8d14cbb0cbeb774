"""Local wall-clock times (pushcamp/domain/local_time.py), as tables over real IANA zones
(zoneinfo with tzdata): the next occurrence, spring-forward gaps, fall-back repeats, and
when silent hours end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pushcamp.domain.local_time import (
    next_wall_time,
    parse_wall_time,
    resolve_zone,
    silent_hours_end,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "minutes"),
    [("00:00", 0), ("10:00", 600), ("23:59", 1439), ("07:05", 425)],
)
def test_wall_times_parse(value: str, minutes: int) -> None:
    assert parse_wall_time(value) == minutes


@pytest.mark.parametrize("value", ["24:00", "7:00", "10:60", "10:00:00", "", "１０:００", " 10:00"])
def test_bad_wall_times(value: str) -> None:
    assert parse_wall_time(value) is None


@pytest.mark.parametrize(
    ("now", "wall", "zone", "expected"),
    [
        # Plain days: later today, or tomorrow once it has passed.
        ("2030-06-01T06:00:00", "10:00", "Europe/Berlin", "2030-06-01T08:00:00"),
        ("2030-06-01T08:00:00", "10:00", "Europe/Berlin", "2030-06-01T08:00:00"),
        ("2030-06-01T08:00:01", "10:00", "Europe/Berlin", "2030-06-02T08:00:00"),
        ("2030-06-01T23:00:00", "10:00", "Asia/Tokyo", "2030-06-02T01:00:00"),
        ("2030-06-01T12:00:00", "10:00", "America/New_York", "2030-06-01T14:00:00"),
        ("2030-06-01T12:00:00", "10:00", "Asia/Kolkata", "2030-06-02T04:30:00"),
        # Spring forward in Berlin (2030-03-31 01:00Z: 02:00 CET -> 03:00 CEST): 02:30
        # does not exist that day, sent when the clocks jump; the day after, as usual.
        ("2030-03-31T00:00:00", "02:30", "Europe/Berlin", "2030-03-31T01:00:00"),
        ("2030-03-31T00:59:59", "02:00", "Europe/Berlin", "2030-03-31T01:00:00"),
        ("2030-03-31T01:00:01", "02:30", "Europe/Berlin", "2030-04-01T00:30:00"),
        ("2030-03-31T00:00:00", "03:00", "Europe/Berlin", "2030-03-31T01:00:00"),
        ("2030-03-31T00:00:00", "01:59", "Europe/Berlin", "2030-03-31T00:59:00"),
        # New York springs forward at 02:00 EST (2030-03-10 07:00Z).
        ("2030-03-10T05:00:00", "02:15", "America/New_York", "2030-03-10T07:00:00"),
        # Fall back in Berlin (2030-10-27 01:00Z: 03:00 CEST -> 02:00 CET): 02:30 happens
        # twice; the first occurrence, and not again an hour later.
        ("2030-10-27T00:00:00", "02:30", "Europe/Berlin", "2030-10-27T00:30:00"),
        ("2030-10-27T00:30:01", "02:30", "Europe/Berlin", "2030-10-28T01:30:00"),
        # Lord Howe moves by half an hour (02:00 -> 01:30 on 2030-04-07).
        ("2030-04-06T14:00:00", "01:45", "Australia/Lord_Howe", "2030-04-06T14:45:00"),
        ("2030-06-01T10:00:00", "10:00", "UTC", "2030-06-01T10:00:00"),
    ],
)
def test_next_wall_time(now: str, wall: str, zone: str, expected: str) -> None:
    minutes = parse_wall_time(wall)
    assert minutes is not None
    found = next_wall_time(utc(now), minutes, ZoneInfo(zone))
    assert found == utc(expected)
    # Read back on the zone's own clock (with the standard library, not the module).
    local = found.astimezone(ZoneInfo(zone))
    if (local.hour, local.minute) != divmod(minutes, 60):
        # Only in a gap: then the clocks jumped at that very instant.
        before = (found - timedelta(seconds=1)).astimezone(ZoneInfo(zone))
        assert (local.utcoffset() or timedelta()) > (before.utcoffset() or timedelta())


def test_next_wall_time_is_never_in_the_past_and_within_25_hours() -> None:
    zone = ZoneInfo("Europe/Berlin")
    start = utc("2030-03-29T00:00:00")
    for step in range(0, 24 * 12 * 4):  # every 20 minutes over four days across the gap
        now = start + timedelta(minutes=20 * step)
        for minutes in (0, 150, 600, 1439):
            found = next_wall_time(now, minutes, zone)
            assert now <= found <= now + timedelta(hours=25)


def test_unknown_zones_take_the_partner_default_then_utc() -> None:
    assert resolve_zone("Asia/Tokyo", "Europe/Berlin") == ZoneInfo("Asia/Tokyo")
    assert resolve_zone(None, "Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert resolve_zone("Mars/Base", "Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert resolve_zone("../etc/passwd", None) is UTC
    assert resolve_zone("America", "nope") is UTC


@pytest.mark.parametrize(
    ("now", "zone", "hours", "expected"),
    [
        # 22:00-07:00 in UTC: 06:59:50 is silent until 07:00; 07:00 is not silent.
        ("2030-06-01T06:59:50", "UTC", (1320, 420), "2030-06-01T07:00:00"),
        ("2030-06-01T07:00:00", "UTC", (1320, 420), None),
        ("2030-06-01T23:00:00", "UTC", (1320, 420), "2030-06-02T07:00:00"),
        ("2030-06-01T21:59:00", "UTC", (1320, 420), None),
        # Tokyo: 23:00Z is 08:00 local, outside 22:00-07:00.
        ("2030-06-01T23:00:00", "Asia/Tokyo", (1320, 420), None),
        ("2030-06-01T14:00:00", "Asia/Tokyo", (1320, 420), "2030-06-01T22:00:00"),
        # Not wrapping midnight: 12:00-14:00 in Berlin (CEST).
        ("2030-06-01T10:30:00", "Europe/Berlin", (720, 840), "2030-06-01T12:00:00"),
        # Unknown zones, silent hours off or empty: never held back.
        ("2030-06-01T06:00:00", None, (1320, 420), None),
        ("2030-06-01T06:00:00", "Nowhere/Land", (1320, 420), None),
        ("2030-06-01T06:00:00", "UTC", (None, None), None),
        ("2030-06-01T06:00:00", "UTC", (420, 420), None),
        # Ending inside a spring-forward gap: 02:30 Berlin -> when the clocks jump.
        ("2030-03-31T00:30:00", "Europe/Berlin", (1320, 150), "2030-03-31T01:00:00"),
    ],
)
def test_silent_hours_end(
    now: str, zone: str | None, hours: tuple[int | None, int | None], expected: str | None
) -> None:
    found = silent_hours_end(utc(now), zone, *hours)
    assert found == (None if expected is None else utc(expected))


def test_send_groups_share_an_instant_and_unknown_zones_take_the_default() -> None:
    from pushcamp.domain.local_time import send_groups

    now = utc("2030-06-01T00:00:00")
    default_at, others = send_groups(
        now, 600, ["Europe/Berlin", "Europe/Paris", "Asia/Tokyo", None, "Bogus/Zone", "UTC"], "UTC"
    )
    assert default_at == utc("2030-06-01T10:00:00")  # UTC itself joins the default group
    assert others == {
        utc("2030-06-01T08:00:00"): ["Europe/Berlin", "Europe/Paris"],
        utc("2030-06-01T01:00:00"): ["Asia/Tokyo"],  # 09:00 JST now
    }


def test_silent_hours_defer_only_within_the_ttl() -> None:
    from pushcamp.delivery.decisions import silent_defer_to

    now = utc("2030-06-01T06:59:42")
    assert silent_defer_to(now, "UTC", 1320, 420, utc("2030-06-01T08:00:00")) == utc(
        "2030-06-01T07:00:00"
    )
    assert silent_defer_to(now, "UTC", 1320, 420, utc("2030-06-01T07:00:00")) == utc(
        "2030-06-01T07:00:00"
    )
    assert silent_defer_to(now, "UTC", 1320, 420, utc("2030-06-01T06:59:59")) is None
    assert silent_defer_to(now, "Asia/Tokyo", 1320, 420, utc("2030-06-02T00:00:00")) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"send_at_local": "10:00"}, ("10:00", 60)),
        ({"send_at_local": "23:59", "send_at_local_window_minutes": 1440}, ("23:59", 1440)),
        ({}, (None, None)),
        ({"send_at_local": None, "send_at_local_window_minutes": None}, (None, None)),
    ],
)
def test_send_at_local_parses(body: dict[str, object], expected: tuple[object, object]) -> None:
    from pushcamp.domain.launches import parse_launch

    request = parse_launch(
        {
            "partner_id": "p",
            "title": "t",
            "description": "d",
            "link": "https://x.example",
            "ttl": 60,
            **body,
        },
        is_all=True,
        now=utc("2030-06-01T00:00:00"),
    )
    assert (request.send_at_local, request.send_at_local_window_minutes) == expected
