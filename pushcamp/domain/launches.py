"""Launches: the rules of a launch request (contract §2.2), the notification payload and
its size limit (§4), and the audience and delivery rules the fan-out engine applies.

Pure: no database, no network, no clock (``now`` is always passed in). The engine in
``pushcamp.delivery`` calls these; the API layer only parses JSON and maps the errors.
"""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from urllib.parse import urlsplit

from pushcamp.domain import campaigns, personalise, text
from pushcamp.domain.local_time import parse_wall_time
from pushcamp.domain.locales import ALL_LANGUAGES
from pushcamp.domain.subscribers import (
    ATTRIBUTE_NAME,
    ATTRIBUTE_VALUE_MAX_CHARS,
    BUILTIN_ATTRIBUTES,
)
from pushcamp.errors import FieldError, InvalidRequest

# The largest notification a Web Push message can carry, a protocol fact the domain keeps
# its own copy of (it does not import the protocol library): RFC 8291 encrypts into one
# aes128gcm record of at most 4096 bytes (RFC 8030 section 7.2), less the 86-byte
# aes128gcm header (salt 16, record size 4, key id length 1, sender's key 65), the
# 16-byte AEAD tag and the 1-byte padding delimiter. tests/unit/test_layers.py checks it
# equals the MAX_PAYLOAD_SIZE of the webpush package.
MAX_PAYLOAD_SIZE = 4096 - 86 - 16 - 1

__all__ = [
    "ACTION_TITLE_MAX_CHARS",
    "MAX_ACTIONS",
    "MAX_PER_MINUTE",
    "MIN_PER_MINUTE",
    "SCHEDULE_MAX_AHEAD",
    "DESCRIPTION_MAX_CHARS",
    "DESCRIPTION_WITH_BANNER_MAX_CHARS",
    "MAX_TAG_CHARS",
    "MAX_TARGET_VALUES",
    "MAX_TOKEN_CHARS",
    "PAUSE_MIN_ATTEMPTS",
    "PAUSE_REJECT_RATIO",
    "TERMINAL",
    "TOPIC_MAX_CHARS",
    "TTL_MAX_SECONDS",
    "URL_MAX_CHARS",
    "AB_MAX_VARIANTS",
    "AB_MIN_VARIANTS",
    "AbVariant",
    "LocaleVariant",
    "MAX_LOCALE_VARIANTS",
    "ab_variant_of",
    "action_title_problem",
    "content_for",
    "audience_language",
    "counts_towards_pause",
    "DeliveryState",
    "DropReason",
    "LaunchRequest",
    "LaunchStatus",
    "LIVE",
    "NotificationAction",
    "Target",
    "build_payload",
    "PayloadParts",
    "payload_parts",
    "check_payload",
    "engaged",
    "engagement_cutoff",
    "fingerprint",
    "frequency_capped",
    "in_silent_hours",
    "local_minutes",
    "parse_launch",
    "payload_problem",
    "send_at_problem",
    "slot",
    "should_pause",
    "topic_for",
    "url_problem",
]

DESCRIPTION_MAX_CHARS = 255
# A notification with a large image leaves room for one short line of text.
DESCRIPTION_WITH_BANNER_MAX_CHARS = 30
URL_MAX_CHARS = 2048
TTL_MAX_SECONDS = 864_000  # 240 hours
MAX_TARGET_VALUES = 100
# Action buttons (a pushcamp extension): Chromium shows at most two
# (``Notification.maxActions``), and a button label much longer than 40 characters is cut
# off on every desktop and phone we looked at.
MAX_ACTIONS = 2
ACTION_TITLE_MAX_CHARS = 40
# The longest per-delivery event token and notification tag the engine may put in a
# payload. ``payload_problem`` measures with placeholders of exactly these lengths, so a
# launch it accepts fits whatever token a delivery gets; ``build_payload`` refuses longer
# ones rather than silently breaking that promise. 256 is the longest event token the
# events endpoint accepts (a signed token with a 64-character partner id is about 172),
# so no token the engine signs can exceed it.
MAX_TOKEN_CHARS = 256
MAX_TAG_CHARS = 64
# Text JSON writes as it is inside a string: printable ASCII but '"' and '\\'.
_JSON_PLAIN = re.compile(r"[ !#-\[\]-~]*")
# Per-language content and A/B tests (pushcamp extensions, docs/delivery.md).
MAX_LOCALE_VARIANTS = 50
AB_MIN_VARIANTS = 2
AB_MAX_VARIANTS = 4

PAUSE_MIN_ATTEMPTS = 50
PAUSE_REJECT_RATIO = 0.8

# Scheduling and throttling (pushcamp extensions, docs/delivery.md): ``send_at`` at most
# this far ahead; ``max_per_minute`` within these bounds (1,000,000 a minute is more than
# one process sends; below 1 nothing would ever go).
SCHEDULE_MAX_AHEAD = timedelta(days=30)
MIN_PER_MINUTE = 1
MAX_PER_MINUTE = 1_000_000
_SEND_AT_MAX_CHARS = 64
# Local-time launches: a push may go out up to this many minutes after the local time
# (default), at most a day.
LOCAL_WINDOW_DEFAULT_MINUTES = 60
LOCAL_WINDOW_MAX_MINUTES = 1440


class LaunchStatus(StrEnum):
    # Recorded with a ``send_at`` still ahead: no batch plan yet, nothing sent; becomes
    # Queued when due (the runners look every poll), Stopped if cancelled before.
    SCHEDULED = "Scheduled"
    QUEUED = "Queued"
    SENDING = "Sending"
    SENT = "Sent"
    PAUSED = "Paused"
    STOPPED = "Stopped"
    FAILED = "Failed"


#: A launch in one of these states never sends again.
TERMINAL = frozenset({LaunchStatus.SENT, LaunchStatus.STOPPED, LaunchStatus.FAILED})
#: A launch in one of these states has not ended: a delete of its campaign, or a cancel,
#: stops it.
LIVE = (LaunchStatus.SCHEDULED, LaunchStatus.QUEUED, LaunchStatus.SENDING, LaunchStatus.PAUSED)


class DropReason(StrEnum):
    """Why a targeted subscriber got nothing: the ``dropped`` labels of statistics (§2.4)."""

    FREQUENCY_CAPPED = "frequencyCapped"
    SILENT_HOURS = "silentHours"
    UNSUBSCRIPTIONS = "unsubscriptions"
    SERVICE_PROVIDER_ERRORS = "serviceProviderErrors"
    INTERNAL_ERRORS = "internalErrors"
    TOO_LARGE = "payloadTooLarge"
    # Provisional: a vouched-for subscription answered 401/403 (the sender is wrong).
    # Counted towards a pause; a resume removes these records so that the subscribers
    # are tried again, and a launch that ends without pausing turns them into
    # serviceProviderErrors (docs/delivery.md).
    SENDER_REFUSED = "senderRefused"
    # A local-time launch reached this subscriber after its window (send_at_local +
    # send_at_local_window_minutes): not sent a day late (docs/delivery.md). Reported
    # under the contract's internalErrors label (domain/statistics.py).
    LOCAL_TIME_MISSED = "localTimeMissed"


class DeliveryState(StrEnum):
    """The state of one delivery record (one launch × one subscriber)."""

    PENDING = "pending"
    SENT = "sent"  # accepted by the push service (2xx), not necessarily delivered
    DROPPED = "dropped"  # with a DropReason


@dataclass(frozen=True, slots=True)
class Target:
    """Subscribers whose ``attribute`` equals any of ``values``."""

    attribute: str
    values: tuple[str, ...]

    @property
    def builtin(self) -> bool:
        """True for ``d_wp_browser``/``d_wp_os``/``d_wp_device`` (their own columns)."""
        return self.attribute in BUILTIN_ATTRIBUTES


@dataclass(frozen=True, slots=True)
class NotificationAction:
    """One action button: its label and where a click on it takes the user."""

    title: str
    link: str


@dataclass(frozen=True, slots=True)
class LocaleVariant:
    """The title and description subscribers of ``locale`` get instead of the base ones."""

    locale: str
    title: str
    description: str


@dataclass(frozen=True, slots=True)
class AbVariant:
    """One arm of an A/B test: its texts and its share of the audience (percent)."""

    title: str
    description: str
    split: int


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """A validated launch body; the campaign, owner and status come from the server.

    The fields after ``target`` are pushcamp extensions (richer notifications); their
    defaults are what a body without them means, so requests stored before they existed
    read back the same."""

    partner_id: str
    title: str
    description: str
    image: str | None
    banner: str | None
    link: str
    ttl: int
    include_unengaged: bool
    language: str | None
    target: Target | None
    actions: tuple[NotificationAction, ...] = ()
    badge: str | None = None
    require_interaction: bool = False
    renotify: bool = False
    silent: bool = False
    # Scheduling and throttling: kept on the launch row (not_before, max_per_minute), not
    # in the stored request (launch_codec leaves them out).
    send_at: datetime | None = None
    max_per_minute: int | None = None
    # Local time (docs/delivery.md, "Local-time launches"): "HH:MM" on each subscriber's
    # own wall clock, and how many minutes after it a push may still go out. Stored in
    # the request: the plan is written from them when the launch starts.
    send_at_local: str | None = None
    send_at_local_window_minutes: int | None = None
    # Per-language texts (the base title/description are the fallback) and an A/B test
    # (two to four arms whose splits add up to 100); never both in one launch.
    variants: tuple[LocaleVariant, ...] = ()
    ab: tuple[AbVariant, ...] = ()


# --- parsing ----------------------------------------------------------------------------

_MISSING = object()
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _get(data: Mapping[str, object], key: str) -> object:
    """The value of ``key``; JSON ``null`` counts as absent (every optional field has a
    default, and a required one is then reported as missing)."""
    value = data.get(key, _MISSING)
    return _MISSING if value is None else value


def _text(
    value: object, field: str, errors: list[FieldError], *, normalise: bool = True
) -> str | None:
    """A required, storable string (NFC-normalised unless told not to), or None after
    recording why not."""
    if value is _MISSING:
        errors.append(FieldError(field, "is required"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be a string"))
        return None
    if problem := text.storage_problem(value):
        errors.append(FieldError(field, problem))
        return None
    return text.normalise(value) if normalise else value


def _host_problem(host: str) -> str | None:
    # Brackets mark an IPv6 literal, which urlsplit has already checked; anything else
    # must be a DNS name (IDNs allowed) of at most 253 octets.
    if not host:
        return "must name a host"
    if ":" in host:
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return "must name a valid host"
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return "must name a valid host"
    return None


def url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``value`` is not an absolute URL with one of ``schemes`` and a valid host.

    These URLs are fetched or opened by the subscriber's browser, never by pushcamp, so
    private addresses are not refused here (the SSRF rules are for push endpoints).
    """
    wanted = " or ".join(schemes)
    if len(value) > URL_MAX_CHARS:
        return f"must be at most {URL_MAX_CHARS} characters"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return f"must be an {wanted} URL"
    if parts.scheme.lower() not in schemes or not parts.netloc:
        return f"must be an {wanted} URL"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials"
    return _host_problem((parts.hostname or "").rstrip("."))


def _url(
    value: object, field: str, schemes: tuple[str, ...], errors: list[FieldError]
) -> str | None:
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be a string"))
        return None
    if problem := url_problem(value, schemes):
        errors.append(FieldError(field, problem))
        return None
    return value


def _ttl(value: object, errors: list[FieldError]) -> int | None:
    """An integer or a string of ASCII digits (the published samples send ``"1000"``).
    Not a bool (JSON ``true`` is not 1), not a float, no sign, no spaces."""
    reason = f"must be an integer from 0 to {TTL_MAX_SECONDS} (or a string of digits)"
    if value is _MISSING:
        errors.append(FieldError("ttl", "is required"))
        return None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        # Leading zeros are harmless; the length guard keeps int() cheap on a long string.
        digits = value.lstrip("0") or "0"
        number = int(digits) if len(digits) <= 7 else TTL_MAX_SECONDS + 1
    else:
        number = None
    if number is None or not 0 <= number <= TTL_MAX_SECONDS:
        errors.append(FieldError("ttl", reason))
        return None
    return number


def _include_unengaged(data: Mapping[str, object], errors: list[FieldError]) -> bool:
    given = {
        key: value
        for key in ("include_unengaged", "include_unengage")
        if (value := _get(data, key)) is not _MISSING
    }
    for key, value in given.items():
        if not isinstance(value, bool):
            errors.append(FieldError(key, "must be a boolean"))
    values = {v for v in given.values() if isinstance(v, bool)}
    if len(values) > 1:
        errors.append(
            FieldError("include_unengaged", "disagrees with include_unengage; send one of them")
        )
        return False
    return values.pop() if values else False


def _target(value: object, errors: list[FieldError]) -> Target | None:
    if not isinstance(value, dict):
        errors.append(FieldError("target", 'must be an object {"attribute": ..., "values": [...]}'))
        return None
    attribute = value.get("attribute")
    attribute_ok = False
    if attribute is None:
        errors.append(FieldError("target.attribute", "is required"))
    elif not isinstance(attribute, str):
        errors.append(FieldError("target.attribute", "must be a string"))
    elif not ATTRIBUTE_NAME.fullmatch(attribute):
        errors.append(
            FieldError(
                "target.attribute",
                "must be d_wp_browser, d_wp_os, d_wp_device or a custom attribute name",
            )
        )
    else:
        attribute_ok = True
    raw_values = value.get("values")
    values: list[str] = []
    values_ok = False
    if raw_values is None:
        errors.append(FieldError("target.values", "is required"))
    elif not isinstance(raw_values, list) or not raw_values:
        errors.append(FieldError("target.values", "must be a non-empty list of strings"))
    elif len(raw_values) > MAX_TARGET_VALUES:
        errors.append(FieldError("target.values", f"at most {MAX_TARGET_VALUES} values"))
    else:
        values_ok = True
        for index, item in enumerate(raw_values):
            where = f"target.values.{index}"
            if not isinstance(item, str):
                errors.append(FieldError(where, "must be a string"))
            elif problem := text.storage_problem(item):
                errors.append(FieldError(where, problem))
            elif len(item := text.normalise(item)) > ATTRIBUTE_VALUE_MAX_CHARS:
                errors.append(FieldError(where, f"at most {ATTRIBUTE_VALUE_MAX_CHARS} characters"))
            else:
                values.append(item)
                continue
            values_ok = False
    if not (attribute_ok and values_ok):
        return None
    assert isinstance(attribute, str)
    # Duplicates change nothing in an "equals any of" match; keep the first of each.
    return Target(attribute=attribute, values=tuple(dict.fromkeys(values)))


def _flag(data: Mapping[str, object], key: str, errors: list[FieldError]) -> bool:
    """An optional boolean, false when absent; never coerced (``"true"`` is refused)."""
    value = _get(data, key)
    if value is _MISSING:
        return False
    if not isinstance(value, bool):
        errors.append(FieldError(key, "must be a boolean"))
        return False
    return value


def action_title_problem(title: str) -> str | None:
    """Why ``title`` (NFC-normalised, storable) cannot label an action button."""
    if not title.strip():
        return "must not be empty or blank"
    if len(title) > ACTION_TITLE_MAX_CHARS:
        return f"must be at most {ACTION_TITLE_MAX_CHARS} characters"
    return None


def _actions(value: object, errors: list[FieldError]) -> tuple[NotificationAction, ...]:
    """Up to :data:`MAX_ACTIONS` buttons ``{"title": ..., "link": ...}``; each offending
    field is named by its index (``actions[1].link``). An empty list means no buttons."""
    if not isinstance(value, list):
        errors.append(
            FieldError(
                "actions",
                f'must be a list of at most {MAX_ACTIONS} objects {{"title": ..., "link": ...}}',
            )
        )
        return ()
    if len(value) > MAX_ACTIONS:
        errors.append(FieldError("actions", f"at most {MAX_ACTIONS} actions"))
        return ()
    found: list[NotificationAction] = []
    ok = True
    for index, item in enumerate(value):
        where = f"actions[{index}]"
        if not isinstance(item, dict):
            errors.append(FieldError(where, 'must be an object {"title": ..., "link": ...}'))
            ok = False
            continue
        title = _text(_get(item, "title"), f"{where}.title", errors)
        if title is not None and (problem := action_title_problem(title)):
            errors.append(FieldError(f"{where}.title", problem))
            title = None
        link_raw = _get(item, "link")
        link = None
        if link_raw is _MISSING:
            errors.append(FieldError(f"{where}.link", "is required"))
        else:
            link = _url(link_raw, f"{where}.link", ("https", "http"), errors)
        if title is None or link is None:
            ok = False
        else:
            found.append(NotificationAction(title=title, link=link))
    return tuple(found) if ok else ()


def send_at_problem(send_at: datetime, now: datetime) -> str | None:
    """Why a launch cannot be scheduled for ``send_at`` (aware) at ``now``: in the past,
    or more than :data:`SCHEDULE_MAX_AHEAD` ahead."""
    if send_at < _as_utc(now):
        return "must not be in the past"
    if send_at > _as_utc(now) + SCHEDULE_MAX_AHEAD:
        return f"must be at most {SCHEDULE_MAX_AHEAD.days} days ahead"
    return None


def _send_at(value: object, now: datetime | None, errors: list[FieldError]) -> datetime | None:
    """An ISO 8601 date and time with a UTC offset (``2030-05-01T09:00:00+02:00`` or
    ``...Z``), returned in UTC; a time without an offset is ambiguous and refused."""
    reason = "must be an ISO 8601 date and time with an offset, like 2030-05-01T09:00:00+02:00"
    if not isinstance(value, str) or len(value) > _SEND_AT_MAX_CHARS or "T" not in value:
        errors.append(FieldError("send_at", reason))
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors.append(FieldError("send_at", reason))
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors.append(FieldError("send_at", reason))
        return None
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        errors.append(FieldError("send_at", "must be at most 30 days ahead"))
        return None
    if now is None:
        raise ValueError("parse_launch needs now to check send_at")
    if problem := send_at_problem(moment, now):
        errors.append(FieldError("send_at", problem))
        return None
    return moment


def _max_per_minute(value: object, errors: list[FieldError]) -> int | None:
    """An integer from MIN_PER_MINUTE to MAX_PER_MINUTE; not a bool, string or float."""
    number = None if isinstance(value, bool) or not isinstance(value, int) else value
    if number is None or not MIN_PER_MINUTE <= number <= MAX_PER_MINUTE:
        errors.append(
            FieldError(
                "max_per_minute", f"must be an integer from {MIN_PER_MINUTE} to {MAX_PER_MINUTE}"
            )
        )
        return None
    return number


def _texts(
    item: Mapping[str, object], where: str, with_banner: bool, errors: list[FieldError]
) -> tuple[str, str] | None:
    """The ``title`` and ``description`` of a variant, under the base fields' rules."""
    title = _text(_get(item, "title"), f"{where}.title", errors)
    if title is not None and (problem := campaigns.title_problem(title)):
        errors.append(FieldError(f"{where}.title", problem))
        title = None
    description = _text(_get(item, "description"), f"{where}.description", errors)
    if description is not None:
        limit = DESCRIPTION_WITH_BANNER_MAX_CHARS if with_banner else DESCRIPTION_MAX_CHARS
        if not description.strip():
            errors.append(FieldError(f"{where}.description", "must not be empty or blank"))
            description = None
        elif len(description) > limit:
            why = " when a banner is given" if with_banner else ""
            errors.append(
                FieldError(f"{where}.description", f"must be at most {limit} characters{why}")
            )
            description = None
    if title is None or description is None:
        return None
    return title, description


def _locale_variants(
    value: object, with_banner: bool, errors: list[FieldError]
) -> tuple[LocaleVariant, ...]:
    """``{"tr_TR": {"title": ..., "description": ...}, ...}``: at most
    :data:`MAX_LOCALE_VARIANTS` locales (``ll_CC``, not ``all_ALL``)."""
    shape = 'must be an object {"ll_CC": {"title": ..., "description": ...}, ...}'
    if not isinstance(value, dict):
        errors.append(FieldError("variants", shape))
        return ()
    if len(value) > MAX_LOCALE_VARIANTS:
        errors.append(FieldError("variants", f"at most {MAX_LOCALE_VARIANTS} locales"))
        return ()
    found: list[LocaleVariant] = []
    for locale, item in value.items():
        where = f"variants.{locale}"
        if locale == ALL_LANGUAGES or campaigns.language_problem(locale):
            errors.append(FieldError(where, "must be keyed by a locale code ll_CC (e.g. tr_TR)"))
            continue
        if not isinstance(item, dict):
            errors.append(FieldError(where, 'must be an object {"title": ..., "description": ...}'))
            continue
        texts = _texts(item, where, with_banner, errors)
        if texts is not None:
            found.append(LocaleVariant(locale, *texts))
    return tuple(found)


def _ab(value: object, with_banner: bool, errors: list[FieldError]) -> tuple[AbVariant, ...]:
    """``[{"title": ..., "description": ..., "split": 50}, ...]``: two to four arms,
    each ``split`` an integer from 1 to 99, together exactly 100."""
    shape = (
        f"must be a list of {AB_MIN_VARIANTS} to {AB_MAX_VARIANTS} objects "
        '{"title": ..., "description": ..., "split": percent}'
    )
    if not isinstance(value, list) or not AB_MIN_VARIANTS <= len(value) <= AB_MAX_VARIANTS:
        errors.append(FieldError("ab", shape))
        return ()
    found: list[AbVariant] = []
    ok = True
    for index, item in enumerate(value):
        where = f"ab[{index}]"
        if not isinstance(item, dict):
            errors.append(FieldError(where, shape))
            ok = False
            continue
        texts = _texts(item, where, with_banner, errors)
        split = _get(item, "split")
        if isinstance(split, bool) or not isinstance(split, int) or not 1 <= split <= 99:
            errors.append(FieldError(f"{where}.split", "must be an integer from 1 to 99"))
            ok = False
            continue
        if texts is None:
            ok = False
            continue
        found.append(AbVariant(*texts, split=split))
    if ok and sum(v.split for v in found) != 100:
        errors.append(FieldError("ab", "the splits must add up to 100"))
        return ()
    return tuple(found) if ok else ()


def _send_at_local(
    data: Mapping[str, object], errors: list[FieldError]
) -> tuple[str | None, int | None]:
    """``send_at_local`` ("HH:MM", 24-hour) and ``send_at_local_window_minutes`` (an
    integer from 1 to 1440, default :data:`LOCAL_WINDOW_DEFAULT_MINUTES`; only with
    ``send_at_local``)."""
    raw, window_raw = _get(data, "send_at_local"), _get(data, "send_at_local_window_minutes")
    wall = None
    if raw is not _MISSING:
        if isinstance(raw, str) and parse_wall_time(raw) is not None:
            wall = raw
        else:
            errors.append(
                FieldError("send_at_local", "must be a local time HH:MM (24-hour), like 10:00")
            )
    window = None
    if window_raw is not _MISSING:
        number = (
            window_raw if isinstance(window_raw, int) and not isinstance(window_raw, bool) else 0
        )
        if not 1 <= number <= LOCAL_WINDOW_MAX_MINUTES:
            errors.append(
                FieldError(
                    "send_at_local_window_minutes",
                    f"must be an integer from 1 to {LOCAL_WINDOW_MAX_MINUTES}",
                )
            )
        elif raw is _MISSING:
            errors.append(FieldError("send_at_local_window_minutes", "needs send_at_local"))
        else:
            window = number
    if wall is None:
        return None, None
    return wall, LOCAL_WINDOW_DEFAULT_MINUTES if window is None else window


def parse_launch(
    data: Mapping[str, object], *, is_all: bool, now: datetime | None = None
) -> LaunchRequest:
    """Validate a launch body (§2.2), naming every offending field at once.

    ``is_all`` is the campaign's: a segment campaign (False) must name a ``target``; an
    ``is_all`` campaign may, to narrow its audience. Fields not in the contract are
    ignored (the published collection sends some). No value is coerced except ``ttl``,
    which the contract allows as a numeric string. Titles and descriptions are returned
    NFC-normalised, lengths counted in code points.

    pushcamp's extensions (docs/delivery.md, "Richer notifications"): ``actions`` (up to
    two buttons, each a ``title`` of 1 to 40 characters and an http(s) ``link``),
    ``badge`` (an https URL, like ``image``), and the booleans ``require_interaction``,
    ``renotify`` and ``silent``. Absent, they change nothing. Scheduling and throttling
    (docs/delivery.md): ``send_at`` (ISO 8601 with an offset, from ``now`` to 30 days
    ahead; ``now`` is required when it is given) and ``max_per_minute`` (an integer from
    1 to 1000000).
    """
    errors: list[FieldError] = []

    # Compared byte for byte with the token's partner, so never rewritten.
    partner_id = _text(_get(data, "partner_id"), "partner_id", errors, normalise=False)

    title = _text(_get(data, "title"), "title", errors)
    if title is not None and (problem := campaigns.title_problem(title)):
        errors.append(FieldError("title", problem))
        title = None

    image_raw, banner_raw = _get(data, "image"), _get(data, "banner")
    image = None if image_raw is _MISSING else _url(image_raw, "image", ("https",), errors)
    banner = None if banner_raw is _MISSING else _url(banner_raw, "banner", ("https",), errors)

    description = _text(_get(data, "description"), "description", errors)
    if description is not None:
        limit = (
            DESCRIPTION_WITH_BANNER_MAX_CHARS
            if banner_raw is not _MISSING
            else DESCRIPTION_MAX_CHARS
        )
        if not description.strip():
            errors.append(FieldError("description", "must not be empty or blank"))
        elif len(description) > limit:
            why = " when a banner is given" if banner_raw is not _MISSING else ""
            errors.append(FieldError("description", f"must be at most {limit} characters{why}"))

    link_raw = _get(data, "link")
    link = None
    if link_raw is _MISSING:
        errors.append(FieldError("link", "is required"))
    else:
        link = _url(link_raw, "link", ("https", "http"), errors)

    ttl = _ttl(_get(data, "ttl"), errors)
    include_unengaged = _include_unengaged(data, errors)

    language_raw = _get(data, "language")
    language = None
    if language_raw is not _MISSING:
        if not isinstance(language_raw, str):
            errors.append(FieldError("language", "must be a string"))
        elif problem := campaigns.language_problem(language_raw):
            errors.append(FieldError("language", problem))
        else:
            language = language_raw

    target_raw = _get(data, "target")
    target = None
    if target_raw is _MISSING:
        if not is_all:
            errors.append(FieldError("target", "is required for a campaign with is_all false"))
    else:
        target = _target(target_raw, errors)

    actions_raw = _get(data, "actions")
    actions = () if actions_raw is _MISSING else _actions(actions_raw, errors)
    badge_raw = _get(data, "badge")
    badge = None if badge_raw is _MISSING else _url(badge_raw, "badge", ("https",), errors)
    require_interaction = _flag(data, "require_interaction", errors)
    # The browser refuses renotify without a tag; build_payload always sets one (the
    # launch's topic), so renotify needs nothing else from the body.
    renotify = _flag(data, "renotify", errors)
    silent = _flag(data, "silent", errors)

    with_banner = banner_raw is not _MISSING
    variants_raw = _get(data, "variants")
    variants = (
        () if variants_raw is _MISSING else _locale_variants(variants_raw, with_banner, errors)
    )
    ab_raw = _get(data, "ab")
    ab = () if ab_raw is _MISSING else _ab(ab_raw, with_banner, errors)
    if variants_raw is not _MISSING and ab_raw is not _MISSING:
        errors.append(FieldError("ab", "cannot be combined with variants; send one of them"))

    send_at_raw = _get(data, "send_at")
    send_at = None if send_at_raw is _MISSING else _send_at(send_at_raw, now, errors)
    rate_raw = _get(data, "max_per_minute")
    max_per_minute = None if rate_raw is _MISSING else _max_per_minute(rate_raw, errors)
    send_at_local, local_window = _send_at_local(data, errors)

    if errors:
        raise InvalidRequest(errors)
    assert partner_id is not None and title is not None and description is not None
    assert link is not None and ttl is not None
    return LaunchRequest(
        partner_id=partner_id,
        title=title,
        description=description,
        image=image,
        banner=banner,
        link=link,
        ttl=ttl,
        include_unengaged=include_unengaged,
        language=language,
        target=target,
        actions=actions,
        badge=badge,
        require_interaction=require_interaction,
        renotify=renotify,
        silent=silent,
        send_at=send_at,
        max_per_minute=max_per_minute,
        send_at_local=send_at_local,
        send_at_local_window_minutes=local_window,
        variants=variants,
        ab=ab,
    )


def fingerprint(data: Mapping[str, object]) -> str:
    """SHA-256 (hex) of the body as canonical JSON: keys sorted at every level, no
    whitespace, non-ASCII escaped. Two bodies that differ only in key order or spacing
    get the same fingerprint, so a retry with the same ``Idempotency-Key`` is recognised
    and a different body under a reused key is not."""
    canonical = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


# --- per-subscriber content -------------------------------------------------------------


def ab_variant_of(req: LaunchRequest, launch_id: int, subscriber_id: int) -> int | None:
    """The A/B arm (index) of this subscriber in this launch, None without an A/B test;
    fixed for (launch, subscriber) (:func:`personalise.ab_variant`)."""
    if not req.ab:
        return None
    return personalise.ab_variant([v.split for v in req.ab], launch_id, subscriber_id)


def content_for(
    req: LaunchRequest,
    *,
    language: str | None,
    attributes: Mapping[str, object],
    variant: int | None,
) -> tuple[str, str]:
    """The title and description one subscriber gets: its A/B arm's (``variant``), else
    its language's from ``variants``, else the base ones; placeholders filled from its
    attributes (:func:`personalise.render`)."""
    title, description = req.title, req.description
    if variant is not None and 0 <= variant < len(req.ab):
        title, description = req.ab[variant].title, req.ab[variant].description
    elif language is not None:
        for v in req.variants:
            if v.locale == language:
                title, description = v.title, v.description
                break
    return personalise.render(title, attributes), personalise.render(description, attributes)


def _text_choices(req: LaunchRequest) -> list[tuple[str, str, str]]:
    """Every (field prefix, title, description) a subscriber of this launch may get."""
    choices = [("", req.title, req.description)]
    if req.ab:
        # Every subscriber gets an arm; the base texts are never sent.
        choices = [(f"ab[{i}].", v.title, v.description) for i, v in enumerate(req.ab)]
    choices += [(f"variants.{v.locale}.", v.title, v.description) for v in req.variants]
    return choices


# --- payload ----------------------------------------------------------------------------


def build_payload(
    req: LaunchRequest,
    *,
    default_icon: str | None,
    token: str,
    events_url: str,
    tag: str,
    title: str | None = None,
    description: str | None = None,
) -> bytes:
    """The notification the service worker shows, as compact UTF-8 JSON:
    ``title``, ``body``, ``icon`` (the launch's image, else the partner's default; left
    out when neither), ``image`` (the banner, when given), ``badge`` (when given), ``url``
    (the link), ``actions`` (``[{"title", "url"}, ...]``, when the launch has buttons),
    ``require_interaction``, ``renotify``, ``silent`` (each only when true), ``token``
    (the per-delivery signed event token), ``events_url`` and ``tag`` (always set, so
    ``renotify`` always has the tag the browser requires). A launch without the
    extensions gives exactly the payload it gave before they existed.

    ``token`` and ``tag`` must be URL-safe ASCII of at most :data:`MAX_TOKEN_CHARS` and
    :data:`MAX_TAG_CHARS` characters, or the size check of :func:`payload_problem` would
    not hold; a longer one is a programming error (ValueError).

    ``title`` and ``description``, when given, replace the launch's (one subscriber's
    content, :func:`content_for`).
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(f"event token longer than {MAX_TOKEN_CHARS} characters")
    if not _JSON_PLAIN.fullmatch(token):
        raise ValueError("event token must be printable ASCII without quotes or backslashes")
    parts = payload_parts(
        req,
        default_icon=default_icon,
        events_url=events_url,
        tag=tag,
        title=title,
        description=description,
    )
    return parts.with_token(token)


@dataclass(frozen=True, slots=True)
class PayloadParts:
    """:func:`build_payload`'s bytes before and after the token."""

    head: bytes
    tail: bytes

    def with_token(self, token: str) -> bytes:
        """The payload with ``token``, which must need no JSON escaping (a signed event
        token never does: :func:`build_payload` checks one it is given)."""
        return self.head + token.encode("ascii") + self.tail


def payload_parts(
    req: LaunchRequest,
    *,
    default_icon: str | None,
    events_url: str,
    tag: str,
    title: str | None = None,
    description: str | None = None,
) -> PayloadParts:
    """:func:`build_payload`'s bytes before and after the token: the same for every
    subscriber who gets the same text, so a sender builds them once per launch and text
    and puts each subscriber's token between them (a token needs no JSON escaping)."""
    if len(tag) > MAX_TAG_CHARS:
        raise ValueError(f"tag longer than {MAX_TAG_CHARS} characters")
    payload: dict[str, object] = {
        "title": req.title if title is None else title,
        "body": req.description if description is None else description,
    }
    icon = req.image or default_icon
    if icon:
        payload["icon"] = icon
    if req.banner:
        payload["image"] = req.banner
    if req.badge:
        payload["badge"] = req.badge
    payload["url"] = req.link
    if req.actions:
        payload["actions"] = [{"title": a.title, "url": a.link} for a in req.actions]
    for name in ("require_interaction", "renotify", "silent"):
        if getattr(req, name):
            payload[name] = True
    # '{"title":…,…}' and '{"events_url":…,"tag":…}' around '"token":"<token>"': the
    # bytes json.dumps gives for the whole object with the token in its place.
    head = _compact_json(payload)[:-1] + ',"token":"'
    tail = '",' + _compact_json({"events_url": events_url, "tag": tag})[1:]
    return PayloadParts(head.encode("utf-8"), tail.encode("utf-8"))


def _compact_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _worst_case(req: LaunchRequest, default_icon: str | None, events_url: str) -> bytes:
    """The largest payload any subscriber can get: each possible title and description
    with every placeholder at the longest value an attribute can hold."""
    payloads = (
        build_payload(
            req,
            default_icon=default_icon,
            token="x" * MAX_TOKEN_CHARS,
            events_url=events_url,
            tag="x" * MAX_TAG_CHARS,
            title=personalise.worst_case(title),
            description=personalise.worst_case(description),
        )
        for _, title, description in _text_choices(req)
    )
    return max(payloads, key=len)


def payload_problem(req: LaunchRequest, default_icon: str | None, events_url: str) -> str | None:
    """Why this launch's notification could not be sent (it would not fit one Web Push
    message of 4096 bytes once encrypted, §4), or None. Measured with the longest token
    and tag a delivery can carry, so every message of an accepted launch fits."""
    size = len(_worst_case(req, default_icon, events_url))
    if size > MAX_PAYLOAD_SIZE:
        return (
            f"the notification would be {size} bytes, over the {MAX_PAYLOAD_SIZE} a Web Push "
            "message can carry; shorten the texts or URLs"
        )
    return None


def check_payload(req: LaunchRequest, default_icon: str | None, events_url: str) -> None:
    """Raise InvalidRequest when :func:`payload_problem` finds one, naming the field that
    takes the most room in the payload (that is the one worth shortening)."""
    problem = payload_problem(req, default_icon, events_url)
    if problem is None:
        return
    candidates: dict[str, str] = {}
    for prefix, title, description in _text_choices(req):
        candidates[f"{prefix}title"] = personalise.worst_case(title)
        candidates[f"{prefix}description"] = personalise.worst_case(description)
    candidates |= {
        "image": req.image or "",
        "banner": req.banner or "",
        "badge": req.badge or "",
        "link": req.link,
    }
    for index, action in enumerate(req.actions):
        candidates[f"actions[{index}].title"] = action.title
        candidates[f"actions[{index}].link"] = action.link
    field = max(candidates, key=lambda name: _encoded_size(candidates[name]))
    raise InvalidRequest.of(field, problem)


def _encoded_size(value: str) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


# --- push headers -----------------------------------------------------------------------

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
TOPIC_MAX_CHARS = 32  # RFC 8030 §5.4


def topic_for(launch_id: int) -> str:
    """The RFC 8030 ``Topic`` of every message of a launch: ``pc-l`` and the id in base 36.

    The same for every attempt, so a message re-sent after a crash replaces, at the push
    service, the copy not yet delivered instead of showing twice. Only characters of the
    URL-safe base64 alphabet, at most 32 of them (any 64-bit id takes 13).
    """
    if isinstance(launch_id, bool) or not isinstance(launch_id, int) or launch_id < 0:
        raise ValueError("launch_id must be a non-negative integer")
    digits = ""
    n = launch_id
    while True:
        n, r = divmod(n, 36)
        digits = _BASE36[r] + digits
        if n == 0:
            break
    topic = "pc-l" + digits
    if len(topic) > TOPIC_MAX_CHARS:
        raise ValueError("launch_id too large for a Topic")
    return topic


# --- audience ---------------------------------------------------------------------------


def _as_utc(moment: datetime) -> datetime:
    # Stored times are UTC; SQLite hands them back without a zone.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def engagement_cutoff(now: datetime, window_days: int) -> datetime:
    """The earliest engagement time that still counts as engaged at ``now`` (for the
    audience query: ``last_engaged_at >= cutoff``)."""
    return _as_utc(now) - timedelta(days=window_days)


def engaged(last_engaged_at: datetime | None, now: datetime, window_days: int) -> bool:
    """Whether a subscriber clicked or visited within the last ``window_days`` days
    (boundary included). Never having engaged (None) is not engaged. Naive datetimes are
    taken as UTC."""
    if last_engaged_at is None:
        return False
    return _as_utc(last_engaged_at) >= engagement_cutoff(now, window_days)


@lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # Unknown name, a path-like key, a directory such as "America": no zone.
        return None


def local_minutes(now_utc: datetime, tz_name: str | None) -> int | None:
    """Minutes after local midnight (0-1439) in ``tz_name`` at ``now_utc``.

    None when the subscriber's zone is unknown or not an IANA name: the subscriber's
    local time cannot be known, so silent hours do not apply to them (they are sent to
    rather than held back forever). Naive ``now_utc`` is taken as UTC.
    """
    if not tz_name:
        return None
    zone = _zone(tz_name)
    if zone is None:
        return None
    local = _as_utc(now_utc).astimezone(zone)
    return local.hour * 60 + local.minute


def in_silent_hours(local_minutes: int | None, start: int | None, end: int | None) -> bool:
    """Whether local time ``local_minutes`` falls in the silent window [start, end),
    minutes after midnight. ``start > end`` wraps midnight (22:00-07:00 is 1320-420).
    Off (never silent) when either bound is None, when ``start == end`` (an empty
    window, not a whole day) or when the local time is unknown (None)."""
    if local_minutes is None or start is None or end is None or start == end:
        return False
    if start < end:
        return start <= local_minutes < end
    return local_minutes >= start or local_minutes < end


def frequency_capped(sent_last_24h: int, cap: int | None) -> bool:
    """Whether one more push would exceed the partner's cap of ``cap`` pushes per
    subscriber per 24 hours. None: no cap. A cap of 0 holds back every push."""
    if cap is None:
        return False
    return sent_last_24h >= cap


def audience_language(launch_language: str | None, campaign_language: str | None) -> str | None:
    """The language a launch's subscribers must have (contract §2.2): the launch's
    ``language`` when it names one, else the campaign's; None (no language filter) when
    the one chosen is ``all_ALL``. So a launch may narrow an ``all_ALL`` campaign to one
    locale, and a launch with ``all_ALL`` widens a campaign of one locale to everyone."""
    chosen = launch_language if launch_language is not None else campaign_language
    if chosen is None or chosen == ALL_LANGUAGES:
        return None
    return chosen


# --- throttling -------------------------------------------------------------------------


def slot(
    next_free: datetime | None, now: datetime, count: int, per_minute: int
) -> tuple[datetime, datetime]:
    """The send slot of ``count`` messages of a launch throttled to ``per_minute``:
    ``(start, end)``. It starts at the launch's next free slot, or ``now`` if that has
    passed (an idle launch earns no burst), and lasts ``count`` intervals of
    ``60 / per_minute`` seconds; ``end`` is the next free slot. Taken one at a time by
    every worker (the launch row is locked meanwhile), the slots never overlap, so all
    the workers together keep the rate."""
    if count < 1 or per_minute < 1:
        raise ValueError("count and per_minute must be positive")
    start = _as_utc(now) if next_free is None else max(_as_utc(next_free), _as_utc(now))
    return start, start + timedelta(seconds=count * 60 / per_minute)


# --- pausing ----------------------------------------------------------------------------


def counts_towards_pause(auth_rejected: bool, vouched: bool) -> bool:
    """Whether one refusal says the *sender* is wrong, and so counts towards a pause.

    Only a 401/403 (``auth_rejected``: the push service refuses the VAPID key or the
    sender) from a *vouched-for* subscription does: one that accepted a push from this
    partner before, or that the operator imported. Anyone can register subscriptions
    through the public endpoint that answer 400 or 403 (made for another
    ``applicationServerKey``, or junk); those are dropped and never pause a launch."""
    return auth_rejected and vouched


def should_pause(attempts: int, sender_refusals: int) -> bool:
    """Whether a launch should pause because most of its messages are refused for the
    sender's sake (a VAPID key the push service no longer accepts): sending on would only
    burn the audience. ``sender_refusals`` counts refusals for which
    :func:`counts_towards_pause` holds, with one status. Needs
    :data:`PAUSE_MIN_ATTEMPTS` attempts, so a few early failures do not pause, and a share
    of at least :data:`PAUSE_REJECT_RATIO`."""
    if attempts < PAUSE_MIN_ATTEMPTS:
        return False
    # Division of two exact integers rounds to the double nearest the true share, so a
    # share of exactly 4/5 compares equal to 0.8 (``0.8 * attempts`` would not always).
    return sender_refusals / attempts >= PAUSE_REJECT_RATIO
