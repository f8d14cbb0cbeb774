"""One bulk-import line, without a database: whatever the bytes, the line parser answers
a subscription or a reason and never raises; the subscription validator under it raises
nothing but the project's own :class:`InvalidRequest`; an engagement time is kept only
from 1970 to the import's clock.

Property-based (hypothesis) with a fixed seed and a bounded number of examples, so a
run is repeatable and short; the examples lean on the hostile shapes of JSON Lines
exports (timestamps whose offset pushes them out of datetime's range, lone surrogates,
NUL, huge or non-finite numbers, deep nesting, wrong types in every field).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from pushcamp.domain.subscribers import NewSubscription, engagement_time, parse_subscription
from pushcamp.encoding import b64url_encode
from pushcamp.errors import InvalidRequest
from pushcamp.services.importer import parse_line

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FCM = "https://fcm.googleapis.com/fcm/send/"
_POINT = (
    ec.generate_private_key(ec.SECP256R1())
    .public_key()
    .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
)
GOOD_KEYS = {"p256dh": b64url_encode(_POINT), "auth": b64url_encode(secrets.token_bytes(16))}
FIELDS = (
    "endpoint", "keys", "language", "timezone", "attributes",
    "d_wp_browser", "d_wp_os", "d_wp_device", "last_engaged_at",
)  # fmt: skip
# Repeatable and bounded: the same examples on every run, no example database written.
FUZZ = settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text as JSON can carry it: any code point, lone surrogates and NUL included.
hostile_text = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(
    ["\ud800", "a\x00b", "\u202e\x1b[2J", "", " ", "Z", "1e400", "NaN"]
)
# Every UTC offset datetime accepts (strictly within a day).
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
timestamps = (
    st.builds(
        lambda when, offset: when.replace(tzinfo=offset).isoformat(),
        st.datetimes(min_value=datetime.min, max_value=datetime.max),
        offsets,
    )
    | st.datetimes(min_value=datetime.min, max_value=datetime.max).map(datetime.isoformat)
    | st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-W01-1",
        ]
    )
    | hostile_text
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | hostile_text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)
field_values: dict[str, st.SearchStrategy[Any]] = {
    "endpoint": st.sampled_from(
        [
            FCM + "abc",
            "HTTPS://FCM.GoogleAPIs.com.:443/fcm/send/x",
            "https://fcm.googleapis.com:99999/x",
            "https://[::1",
            "https://169.254.169.254/",
            "https://\ud800/",
            "https://fcm.googleapis.com/\x00",
        ]
    )
    | hostile_text.map(lambda t: FCM + t)
    | json_values,
    "keys": st.just(GOOD_KEYS)
    | st.dictionaries(st.sampled_from(["p256dh", "auth", "x"]), json_values, max_size=3)
    | json_values,
    "language": st.sampled_from(["tr", "en-US", "zh-Hant-TW", "x" * 36, "und", "root"])
    | json_values,
    "timezone": st.sampled_from(["Europe/Istanbul", "../../etc/passwd", "UTC"]) | json_values,
    "attributes": st.dictionaries(hostile_text, json_values, max_size=6)
    | st.dictionaries(
        st.sampled_from(["plan", "d_wp_device", "d_wp_os", "n"]),
        st.integers(min_value=-(10**300), max_value=10**300) | json_values,
        max_size=4,
    )
    | json_values,
    "d_wp_browser": json_values,
    "d_wp_os": json_values,
    "d_wp_device": st.sampled_from(["desktop", "phone"]) | json_values,
    "last_engaged_at": timestamps | json_values,
}
# A good endpoint and keys half the time, so that the other fields get checked too.
subscriptions = st.fixed_dictionaries(
    {
        "endpoint": st.just(FCM + "abc") | field_values["endpoint"],
        "keys": st.just(GOOD_KEYS) | field_values["keys"],
    },
    optional={name: field_values[name] for name in FIELDS[2:]},
)


def _line(data: Any) -> bytes:
    # surrogatepass: a lone surrogate reaches the file as the three bytes a careless
    # exporter writes; allow_nan: NaN and Infinity as the bare words.
    return json.dumps(data, allow_nan=True).encode("utf-8", "surrogatepass")


@seed(20250601)
@FUZZ
@given(
    data=subscriptions,
    user_agent=st.none()
    | hostile_text
    | st.sampled_from(["\ud800 Chrome/120.0", "Mozilla/5.0 (X11; \x00) Chrome/120.0"]),
)
def test_validator_raises_only_invalid_request(
    data: dict[str, Any], user_agent: str | None
) -> None:
    try:
        sub = parse_subscription(
            data, allowed_hosts=frozenset(), user_agent=user_agent, allow_last_engaged=True, now=NOW
        )
    except InvalidRequest as exc:
        assert exc.errors and all(e.field and e.reason for e in exc.errors)
        return
    assert sub.endpoint.startswith("https://fcm.googleapis.com/")
    if sub.last_engaged_at is not None:
        assert datetime(1970, 1, 1, tzinfo=UTC) <= sub.last_engaged_at <= NOW


@seed(20250601)
@FUZZ
@given(
    raw=st.binary(max_size=300)
    | subscriptions.map(_line)
    | st.builds(
        lambda depth, bracket: bracket * depth, st.integers(1, 20_000), st.sampled_from("[{")
    ).map(str.encode)
    | st.sampled_from(
        [
            b'{"endpoint": 1e400}',
            b'{"endpoint": NaN}',
            b'{"a": 1, "a": 2}',
            b'{"\\u001b[2J": 1, "\\u001b[2J": 2}',
            b'{"endpoint": ' + b"9" * 5000 + b"}",
            b"\xef\xbb\xbf{}",
            b'{"endpoint": "\\ud800"}',
            b"\x00",
            b"\xff\xfe",
        ]
    )
)
def test_line_parser_never_raises(raw: bytes) -> None:
    result = parse_line(raw, frozenset(), NOW)
    if isinstance(result, str):
        # A reason the terminal and the errors file (UTF-8) can take as it is.
        assert result and result.isprintable() and len(result) <= 300
        result.encode("utf-8")
    else:
        assert isinstance(result, NewSubscription)


@pytest.mark.parametrize(
    ("given_", "stored"),
    [
        ("2025-03-04T05:06:07+03:00", datetime(2025, 3, 4, 2, 6, 7, tzinfo=UTC)),
        ("2020-01-01T00:00:00", datetime(2020, 1, 1, tzinfo=UTC)),  # no offset: UTC
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("1970-01-01T02:00:00+02:00", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2025-06-01T12:00:00Z", NOW),
        # A fast clock elsewhere: up to five minutes ahead is stored as now.
        ("2025-06-01T12:05:00Z", NOW),
        ("2025-06-01T15:04:00+03:00", NOW),
    ],
)
def test_engagement_time_kept(given_: str, stored: datetime) -> None:
    assert engagement_time(given_, NOW) == stored


@pytest.mark.parametrize(
    ("given_", "reason"),
    [
        # Overflows once in UTC (before year 1, after 9999).
        ("0001-01-01T00:00:00+14:00", "must be from 1970-01-01T00:00:00Z to now"),
        ("9999-12-31T23:59:59-14:00", "must be from 1970-01-01T00:00:00Z to now"),
        ("9999-12-31T23:59:59Z", "must be from 1970-01-01T00:00:00Z to now"),
        ("2025-06-01T12:05:01Z", "must be from 1970-01-01T00:00:00Z to now"),
        ("0001-01-01T00:00:00Z", "must be from 1970-01-01T00:00:00Z to now"),
        ("1969-12-31T23:59:59Z", "must be from 1970-01-01T00:00:00Z to now"),
        ("2025-02-30T00:00:00Z", "must be an ISO 8601 timestamp"),
        ("", "must be an ISO 8601 timestamp"),
        ("\ud800", "must be an ISO 8601 timestamp"),
        (1_700_000_000, "must be an ISO 8601 timestamp"),
        (1e400, "must be an ISO 8601 timestamp"),
        ([], "must be an ISO 8601 timestamp"),
    ],
)
def test_engagement_time_refused(given_: object, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        engagement_time(given_, NOW)
    assert str(caught.value) == reason
    # 1e400 in JSON is a float Python reads as infinity: written as such, not "Infinity".
    value = "1e400" if given_ == float("inf") else json.dumps(given_)
    line = f'{{"endpoint": "{FCM}x", "keys": {json.dumps(GOOD_KEYS)}, "last_engaged_at": {value}}}'
    assert parse_line(line.encode(), frozenset(), NOW) == f"last_engaged_at: {reason}"


@pytest.mark.parametrize("user_agent", ["\ud800 Chrome/120.0", "Mozilla/5.0 (\x00) Firefox/\x00"])
def test_a_user_agent_that_cannot_be_stored_derives_nothing_unstorable(user_agent: str) -> None:
    sub = parse_subscription({"endpoint": FCM + "x", "keys": GOOD_KEYS}, user_agent=user_agent)
    for derived in (sub.browser, sub.os, sub.device):
        assert derived is None or ("\x00" not in derived and derived.encode("utf-8"))
