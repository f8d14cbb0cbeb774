"""Statistics rules as tables: the published formats, rates, labels, date ranges and the
checks on a conversion (pure functions, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from pushcamp.domain import statistics as rules
from pushcamp.errors import InvalidRequest


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (723, "723"), (411840, "411,840"), (9550384, "9,550,384")],
)
def test_counts_are_written_with_thousands_separators(value: int, text: str) -> None:
    assert rules.count(value) == text


@pytest.mark.parametrize(
    ("numerator", "denominator", "text", "bare"),
    [
        (140183, 411344, "34.08%", "34.08"),
        (723, 140183, "0.52%", "0.52"),
        (0, 0, "0.00%", "0.00"),
        (1, 8, "12.50%", "12.50"),
        (1, 3, "33.33%", "33.33"),
        (2, 3, "66.67%", "66.67"),
        (453, 496, "91.33%", "91.33"),
        (5, 5, "100.00%", "100.00"),
    ],
)
def test_rates_are_percentages_with_two_decimals(
    numerator: int, denominator: int, text: str, bare: str
) -> None:
    value = rules.rate(numerator, denominator)
    assert rules.percent(value) == text
    assert rules.percent_number(value) == bare


@pytest.mark.parametrize(
    ("value", "text", "plain"),
    [
        (Decimal("0"), "0 USD", "0"),
        (Decimal("2479.6600"), "2,480 USD", "2479.66"),
        (Decimal("24.99"), "25 USD", "24.99"),
        (Decimal("1234567.5"), "1,234,568 USD", "1234567.5"),
        (Decimal("100.0000"), "100 USD", "100"),
    ],
)
def test_revenue_formats(value: Decimal, text: str, plain: str) -> None:
    assert rules.money(value, "USD") == text
    assert rules.plain_decimal(value) == plain


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("frequencyCapped", "frequencyCapped"),
        ("silentHours", "silentHours"),
        ("unsubscriptions", "unsubscriptions"),
        ("serviceProviderErrors", "serviceProviderErrors"),
        ("internalErrors", "internalErrors"),
        ("payloadTooLarge", "internalErrors"),
        ("senderRefused", "serviceProviderErrors"),
        ("somethingNew", "internalErrors"),
    ],
)
def test_drop_reasons_map_onto_the_contracts_labels(reason: str, label: str) -> None:
    assert rules.dropped_label(reason) == label


def test_reason_shares_list_every_label_in_order() -> None:
    shares = rules.reason_shares(
        {"unsubscriptions": 453, "serviceProviderErrors": 43}, rules.DROPPED_LABELS
    )
    assert [(s.label, s.count, rules.percent_number(s.share)) for s in shares] == [
        ("frequencyCapped", 0, "0.00"),
        ("silentHours", 0, "0.00"),
        ("unsubscriptions", 453, "91.33"),
        ("serviceProviderErrors", 43, "8.67"),
        ("internalErrors", 0, "0.00"),
    ]


@pytest.mark.parametrize(
    ("undelivered", "sent_expired", "delivered", "offline", "expired"),
    [
        (10, 0, 5, 10, 0),  # every TTL still running
        (10, 15, 5, 0, 10),  # every TTL over
        (10, 8, 5, 7, 3),  # delivered reports come from the oldest sends first
        (0, 10, 10, 0, 0),
    ],
)
def test_undelivered_split_by_ttl(
    undelivered: int, sent_expired: int, delivered: int, offline: int, expired: int
) -> None:
    assert rules.undelivered_split(undelivered, sent_expired, delivered) == {
        rules.OFFLINE: offline,
        rules.EXPIRED: expired,
    }


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2023-6-01", "2023-06-08"),
        ("20230601", "2023-06-08"),
        ("2023-06-01T00:00", "2023-06-08"),
        ("2023-02-30", "2023-03-01"),
        ("２０２３-06-01", "2023-06-08"),
        (20230601, "2023-06-08"),
        (None, "2023-06-08"),
        ("2023-06-09", "2023-06-08"),
    ],
)
def test_bad_date_ranges_are_refused(start: object, end: object) -> None:
    with pytest.raises(InvalidRequest):
        rules.parse_range(start, end)


def test_a_range_covers_whole_utc_days() -> None:
    window = rules.parse_range("2023-06-01", "2023-06-08")
    assert window.since == datetime(2023, 6, 1, tzinfo=UTC)
    assert window.until == datetime(2023, 6, 9, tzinfo=UTC)
    assert rules.parse_range("9999-12-31", "9999-12-31").until is None
    assert rules.parse_range("2023-06-01", "2023-06-01").start == date(2023, 6, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), ("100", 100), ("007", 7), (None, 10)],
)
def test_numbers_take_integers_and_numeric_strings(value: object, expected: int) -> None:
    assert rules.parse_number("page", value, default=10, maximum=100) == expected


@pytest.mark.parametrize("value", [0, "0", -1, "-1", "1.5", 1.5, True, "", " 1", "١", 101, None])
def test_other_numbers_are_refused(value: object) -> None:
    with pytest.raises(InvalidRequest):
        rules.parse_number("per_page", value, maximum=100)


@pytest.mark.parametrize(
    ("value", "currency", "order_id", "amount"),
    [
        (19.99, "USD", None, Decimal("19.99")),
        (0, "EUR", "order-1", Decimal("0")),
        (1.00005, "TRY", "x" * 64, Decimal("1.0001")),
    ],
)
def test_valid_conversions(
    value: object, currency: str, order_id: str | None, amount: Decimal
) -> None:
    conversion = rules.parse_conversion(value, currency, order_id)
    assert (conversion.value, conversion.currency, conversion.order_id) == (
        amount,
        currency,
        order_id,
    )


@pytest.mark.parametrize(
    ("value", "currency", "order_id"),
    [
        (-0.01, "USD", None),
        ("5", "USD", None),
        (True, "USD", None),
        (float("nan"), "USD", None),
        (1e300, "USD", None),
        (5, "usd", None),
        (5, "US", None),
        (5, None, None),
        (5, "USD", ""),
        (5, "USD", "x" * 65),
        (5, "USD", 7),
        (5, "USD", "a\x00b"),
    ],
)
def test_invalid_conversions(value: object, currency: object, order_id: object) -> None:
    with pytest.raises(InvalidRequest):
        rules.parse_conversion(value, currency, order_id)


def test_attribution_window() -> None:
    click = datetime(2023, 6, 1, 12, tzinfo=UTC)
    assert rules.within_window(click, click + timedelta(hours=24), 24)
    assert not rules.within_window(click, click + timedelta(hours=24, seconds=1), 24)
    assert not rules.within_window(click, click - timedelta(seconds=1), 24)


def test_timeline_step_is_a_minute_under_three_hours() -> None:
    start = datetime(2023, 6, 1, tzinfo=UTC)
    assert rules.bucket_step(start, start + timedelta(hours=2, minutes=59)) == timedelta(minutes=1)
    assert rules.bucket_step(start, start + timedelta(hours=3)) == timedelta(hours=1)


_D = datetime(2023, 6, 8, 21, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first", "last", "days"),
    [
        (None, None, 0),  # never launched
        (_D, _D + timedelta(minutes=1), 1),  # the published sample: one day
        (_D, _D + timedelta(hours=3), 2),  # past midnight UTC: two days
        (_D, None, 3),  # still sending: until today (2023-06-10)
        (_D, _D - timedelta(days=1), 1),  # an end before the start never goes below 1
        (datetime(2023, 6, 9, 1, tzinfo=UTC).astimezone(), _D + timedelta(hours=4), 1),
    ],
)
def test_days_active_counts_utc_days_both_ends(
    first: datetime | None, last: datetime | None, days: int
) -> None:
    assert rules.days_active(first, last, date(2023, 6, 10)) == days
