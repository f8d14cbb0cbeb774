"""Statistics rules (contract §2.4), pure: rates, the published string formats, the labels
of dropped and undelivered messages, date ranges, and the checks on a conversion.

Nothing here reads a clock or a database; the store counts, the services assemble, and
these functions decide what the counts mean and how they are written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pushcamp.domain import text
from pushcamp.domain.launches import DropReason
from pushcamp.errors import FieldError, InvalidRequest

# --- counter metrics -----------------------------------------------------------------------


class Metric(StrEnum):
    """What one counter counts. Dropped records count under ``dropped:<DropReason>``."""

    SENT = "sent"
    DELIVERED = "delivered"
    CLICKED = "clicked"
    CONVERSION = "conversion"


DROPPED_PREFIX = "dropped:"


def dropped_metric(reason: str | None) -> str:
    return f"{DROPPED_PREFIX}{reason or DropReason.INTERNAL_ERRORS}"


# --- labels --------------------------------------------------------------------------------

# The contract's dropped labels, in the published order; every response lists all five.
DROPPED_LABELS: tuple[str, ...] = (
    "frequencyCapped",
    "silentHours",
    "unsubscriptions",
    "serviceProviderErrors",
    "internalErrors",
)

# Engine reasons that are not contract labels, and the label they are reported under.
# A payload the push service refused as too large (413) was pushcamp's to prevent: the
# launch's size check lets through what the contract allows, so it counts as internal.
# Any reason this table does not know (a newer engine) is an internal error too.
_LABEL_OF_REASON: dict[str, str] = {
    DropReason.FREQUENCY_CAPPED: "frequencyCapped",
    DropReason.SILENT_HOURS: "silentHours",
    DropReason.UNSUBSCRIPTIONS: "unsubscriptions",
    DropReason.SERVICE_PROVIDER_ERRORS: "serviceProviderErrors",
    DropReason.INTERNAL_ERRORS: "internalErrors",
    DropReason.TOO_LARGE: "internalErrors",
    # A local-time batch reached after its window (pushcamp was down or behind).
    DropReason.LOCAL_TIME_MISSED: "internalErrors",
    # A 401/403 held provisionally while the launch may pause for a wrong sender key; if
    # the launch ends without resuming, the engine rewrites it as serviceProviderErrors:
    # the same label either way, so rewriting it needs no change to the counters.
    "senderRefused": "serviceProviderErrors",
}


def dropped_label(reason: str) -> str:
    """The contract label a recorded drop reason is reported under."""
    return _LABEL_OF_REASON.get(reason, "internalErrors")


# Undelivered = sent - delivered. pushcamp cannot see into a browser; what it knows is
# whether the message's TTL is still running (the push service may yet deliver it to a
# browser that comes online) or over (it never will).
OFFLINE = "offlineRecipients"
EXPIRED = "ttlExpired"
UNDELIVERED_LABELS: tuple[str, ...] = (OFFLINE, EXPIRED)

DEVICE_LABELS = {"desktop": "Desktop", "mobile": "Mobile", "tablet": "Tablet"}
UNKNOWN_DEVICE = "Unknown"


def device_label(device: str | None) -> str:
    return DEVICE_LABELS.get(device or "", UNKNOWN_DEVICE)


def campaign_type(is_all: bool) -> str:
    """``type`` in overall-metrics and ``performance`` labels in top-metrics."""
    return "Bulk" if is_all else "Segment"


CAMPAIGN_TYPES: tuple[str, ...] = ("Bulk", "Segment")

# overall-metrics rows carry the published samples' button links: the first launch's
# action buttons, and "N/A", as the samples write it, where there is no such button.
NO_BUTTON = "N/A"


def days_active(first: datetime | None, last: datetime | None, today: date) -> int:
    """``daysActive`` of overall-metrics: the UTC days from the campaign's first launch to
    the end of its last one (today while one runs), both counted; 0 before any launch."""
    if first is None:
        return 0
    end = last.astimezone(UTC).date() if last is not None else today
    return max((end - first.astimezone(UTC).date()).days, 0) + 1


# --- rates and formats ---------------------------------------------------------------------


def rate(numerator: int | Decimal, denominator: int | Decimal) -> float:
    """``numerator / denominator``; 0 when the denominator is 0 (nothing to rate)."""
    return float(numerator) / float(denominator) if denominator else 0.0


_CENT = Decimal("0.01")


def _two_places(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(_CENT, rounding=ROUND_HALF_UP)


def percent(value: float) -> str:
    """A rate (0..1) as published: ``0.340792`` -> ``"34.08%"`` (half up)."""
    return f"{_two_places(value * 100)}%"


def percent_number(value: float) -> str:
    """A rate as a percentage without the sign: ``"91.33"`` (dropped shares, performance)."""
    return str(_two_places(value * 100))


def count(value: int) -> str:
    """A count as published: ``411840`` -> ``"411,840"``."""
    return f"{value:,}"


def money(value: Decimal, currency: str) -> str:
    """Revenue as in the overview: whole units with separators, ``"2,480 TRY"``."""
    return f"{value.quantize(Decimal(1), rounding=ROUND_HALF_UP):,} {currency}"


def plain_decimal(value: Decimal) -> str:
    """Revenue in ``performance``: ``"2479.66"``, ``"0"``; no exponent, no trailing zeros."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class ReasonShare:
    label: str
    count: int
    share: float  # of the total of its list, 0..1


def reason_shares(counts: Mapping[str, int], labels: Iterable[str]) -> list[ReasonShare]:
    """Every label in order, with its count and its share of the list's total."""
    ordered = list(labels)
    total = sum(counts.get(label, 0) for label in ordered)
    return [
        ReasonShare(label, counts.get(label, 0), rate(counts.get(label, 0), total))
        for label in ordered
    ]


def undelivered_split(undelivered: int, sent_expired: int, delivered: int) -> dict[str, int]:
    """Split a launch's undelivered messages by whether their TTL is over.

    ``sent_expired`` counts the sends whose TTL has run out. Delivered reports are taken
    to come from those older sends first (a browser online at send time reports at
    once), so ``sent_expired - delivered`` of them, at least 0 and at most all the
    undelivered, are expired; the rest are still waiting for their browser."""
    expired = min(max(sent_expired - delivered, 0), max(undelivered, 0))
    return {OFFLINE: max(undelivered, 0) - expired, EXPIRED: expired}


# --- date ranges ---------------------------------------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class DateRange:
    """Days ``start`` to ``end`` inclusive, in UTC: instants in ``[since, until)``."""

    start: date
    end: date

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def until(self) -> datetime | None:
        """The first instant after the range; None when ``end`` is the last date there is."""
        if self.end == date.max:
            return None
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)


def parse_date(field: str, value: Any) -> date:
    """``YYYY-MM-DD`` exactly (not the other ISO spellings ``date.fromisoformat`` takes)."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise InvalidRequest.of(field, "must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest.of(field, "is not a valid date") from None


def parse_range(start: Any, end: Any) -> DateRange:
    errors = []
    parsed: list[date] = []
    for field, value in (("start_date", start), ("end_date", end)):
        try:
            parsed.append(parse_date(field, value))
        except InvalidRequest as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidRequest(errors)
    if parsed[0] > parsed[1]:
        raise InvalidRequest.of("start_date", "is after end_date")
    return DateRange(parsed[0], parsed[1])


def parse_number(field: str, value: Any, *, default: int | None = None, maximum: int) -> int:
    """A positive integer given as a JSON integer or a numeric string (``"100"``), as the
    published samples send. Booleans, floats, signs and spaces are refused."""
    if value is None and default is not None:
        return default
    if type(value) is int:
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        number = int(value)
    else:
        raise InvalidRequest.of(field, "must be a positive integer or a numeric string")
    if not 1 <= number <= maximum:
        raise InvalidRequest.of(field, f"must be between 1 and {maximum}")
    return number


# --- timeline ------------------------------------------------------------------------------

# A campaign whose activity spans less than this is charted per minute, else per hour.
MINUTE_BUCKETS_UNDER = timedelta(hours=3)


def bucket_step(first: datetime, last: datetime) -> timedelta:
    return timedelta(minutes=1) if last - first < MINUTE_BUCKETS_UNDER else timedelta(hours=1)


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """The start of the bucket of size ``step`` (a minute or an hour) ``moment`` is in."""
    if step >= timedelta(hours=1):
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


# --- conversions ---------------------------------------------------------------------------

DEFAULT_CURRENCY = "USD"
DEFAULT_ATTRIBUTION_HOURS = 24
MAX_ATTRIBUTION_HOURS = 24 * 90
MAX_ORDER_ID = 64
_CURRENCY = re.compile(r"[A-Z]{3}")
# Revenue is kept to 4 decimal places, below a trillion per conversion.
VALUE_PLACES = Decimal("0.0001")
MAX_VALUE = Decimal("1e12")


@dataclass(frozen=True, slots=True)
class Conversion:
    value: Decimal
    currency: str
    order_id: str | None


def check_currency(field: str, value: Any) -> str:
    """An ISO 4217 code: three capital letters (``USD``, ``EUR``, ``TRY``)."""
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise InvalidRequest.of(field, "must be an ISO 4217 currency code such as USD")
    return value


def check_attribution_hours(value: int) -> int:
    if not 1 <= value <= MAX_ATTRIBUTION_HOURS:
        raise InvalidRequest.of(
            "attribution_hours", f"must be between 1 and {MAX_ATTRIBUTION_HOURS}"
        )
    return value


def parse_conversion(value: Any, currency: Any, order_id: Any) -> Conversion:
    """A conversion's fields: ``value`` a JSON number ≥ 0 (kept to 4 decimals, half up),
    ``currency`` ISO 4217, ``order_id`` absent/null or 1-64 characters of text."""
    errors = []
    amount = Decimal(0)
    if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
        errors.append(("value", "must be a number"))
    else:
        try:
            amount = Decimal(str(value)).quantize(VALUE_PLACES, rounding=ROUND_HALF_UP)
        except InvalidOperation:
            errors.append(("value", f"must be below {MAX_VALUE:,f}"))
        else:
            if amount < 0:
                errors.append(("value", "must not be negative"))
            elif amount >= MAX_VALUE:
                errors.append(("value", f"must be below {MAX_VALUE:,f}"))
    try:
        code = check_currency("currency", currency)
    except InvalidRequest as exc:
        errors.extend((e.field, e.reason) for e in exc.errors)
        code = ""
    order: str | None = None
    if order_id is not None:
        if not isinstance(order_id, str) or not 1 <= len(order_id) <= MAX_ORDER_ID:
            errors.append(("order_id", f"must be text of 1 to {MAX_ORDER_ID} characters"))
        elif problem := text.storage_problem(order_id):
            errors.append(("order_id", problem))
        else:
            order = order_id
    if errors:
        raise InvalidRequest([FieldError(f, r) for f, r in errors])
    return Conversion(amount + 0, code, order)


def within_window(clicked_at: datetime, now: datetime, hours: int) -> bool:
    """A conversion counts when it comes after the click and within ``hours`` of it."""
    return clicked_at <= now <= clicked_at + timedelta(hours=hours)
