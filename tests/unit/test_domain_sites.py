"""Site origins are compared in the one form browsers send; only plain
``scheme://host[:port]`` origins can be declared. Audience rules parse strictly."""

from __future__ import annotations

import pytest

from pushcamp.domain.sites import (
    check_engagement_days,
    check_frequency_cap,
    check_origins,
    format_minutes,
    origin_of,
    parse_silent_hours,
)
from pushcamp.errors import InvalidRequest


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("https://shop.example", "https://shop.example"),
        ("https://Shop.Example/", "https://shop.example"),
        ("HTTPS://shop.example:443", "https://shop.example"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://shop.example:80", "http://shop.example"),
        ("https://shop.example:8443", "https://shop.example:8443"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
    ],
)
def test_origins_are_canonical(given: str, canonical: str) -> None:
    assert origin_of(given) == canonical


@pytest.mark.parametrize(
    "value",
    [
        "null",
        "shop.example",
        "https://shop.example/path",
        "https://shop.example?x=1",
        "https://shop.example#x",
        "https://user@shop.example",
        "ftp://shop.example",
        "https://",
        "https://shop..example",
        "https://-shop.example",
        "https://shop.example:0",
        "https://shop.example:99999",
        "https://shop.example:",
        "https://bücher.example",
        "https://shop example",
        "http://[not-ip]:80",
        "https://" + "a" * 300 + ".example",
    ],
)
def test_non_origins_are_refused(value: str) -> None:
    assert origin_of(value) is None
    with pytest.raises(InvalidRequest):
        check_origins([value])


def test_check_origins_deduplicates() -> None:
    assert check_origins(["https://a.example", "https://A.example/", "http://b.example"]) == [
        "https://a.example",
        "http://b.example",
    ]


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [("22:00-07:00", 1320, 420), ("00:00-06:30", 0, 390), (" 9:15 - 17:45 ", 555, 1065)],
)
def test_silent_hours(value: str, start: int, end: int) -> None:
    hours = parse_silent_hours(value)
    assert (hours.start, hours.end) == (start, end)
    assert format_minutes(start) == value.split("-")[0].strip().zfill(5)


@pytest.mark.parametrize("value", ["", "22:00", "24:00-07:00", "22:60-07:00", "07:00-07:00", "x-y"])
def test_bad_silent_hours(value: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_silent_hours(value)


def test_audience_numbers() -> None:
    assert check_engagement_days(90) == 90
    assert check_frequency_cap(3) == 3
    for bad in (0, -1, 100_000):
        with pytest.raises(InvalidRequest):
            check_engagement_days(bad)
        with pytest.raises(InvalidRequest):
            check_frequency_cap(bad)
