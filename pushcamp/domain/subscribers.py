"""Subscribers: the rules a browser push subscription must follow before it is stored
(contract §3). Used alike by the public subscribe endpoint and by bulk import.

Pure functions; the only outside knowledge is the ISO/CLDR/IANA tables that come with
well-kept libraries (pycountry, Babel, the tz database) and the User-Agent regexes of
``ua-parser`` (uap-core, maintained by its community and updated as browsers change).
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from babel import Locale, UnknownLocaleError
from cryptography.hazmat.primitives.asymmetric import ec

from pushcamp.domain import locales, text
from pushcamp.encoding import b64url_decode, b64url_encode
from pushcamp.errors import FieldError, InvalidRequest

ENDPOINT_MAX_CHARS = 2048
MAX_ATTRIBUTES = 32
ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
ATTRIBUTE_VALUE_MAX_CHARS = 200
# The built-in attributes a launch's ``target`` can name; they live in their own columns.
BUILTIN_ATTRIBUTES = ("d_wp_browser", "d_wp_os", "d_wp_device")
DEVICES = ("desktop", "mobile", "tablet")

# The push services browsers use. A subscription endpoint must be https on one of these
# (or on a host the operator adds with PUSHCAMP_PUSH_ALLOWED_HOSTS): pushcamp will POST to
# it, so anything else would let a stranger make the server call arbitrary addresses.
KNOWN_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
)
KNOWN_PUSH_SUFFIXES = (".notify.windows.com", ".push.apple.com")
# The characters ``str.isspace()`` accepts, and those below U+0020 (``\s`` on str
# patterns is Python's Unicode whitespace).
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f]")


@dataclass(frozen=True, slots=True)
class NewSubscription:
    """A validated subscription, ready to upsert."""

    endpoint: str
    p256dh: str
    auth: str
    language: str | None = None
    timezone: str | None = None
    browser: str | None = None
    os: str | None = None
    device: str | None = None
    # None: not given (a re-subscribe keeps the stored ones); {} clears them.
    attributes: dict[str, str] | None = None
    last_engaged_at: datetime | None = None


# --- endpoint (no SSRF) -----------------------------------------------------------------


def _is_known_push_host(host: str) -> bool:
    return host in KNOWN_PUSH_HOSTS or any(host.endswith(s) for s in KNOWN_PUSH_SUFFIXES)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _has_space_or_control(url: str) -> bool:
    # Push-service endpoints are printable ASCII, where the only space is " ": two C-speed
    # scans (6 µs for a 2 KiB endpoint, where a loop over its characters takes 120 µs).
    if url.isascii() and url.isprintable():
        return " " in url
    return _SPACE_OR_CONTROL.search(url) is not None


_DEFAULT_PORTS = {"https": 443, "http": 80}


def canonical_endpoint(url: str) -> str:
    """The one spelling an endpoint is stored and looked up under, so that one browser
    never becomes two rows: scheme and host in lower case, the host without a trailing
    dot, no explicit default port (``:443`` for https, ``:80`` for http). The path and
    query are kept exactly as given (they are case-sensitive). A string that is not an
    absolute URL comes back unchanged (it matches no stored endpoint)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme
    prefix = f"{scheme}://{parts.netloc}"
    if not parts.netloc or url[: len(prefix)].lower() != prefix.lower():
        return url
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{url[len(prefix) :]}"


def endpoint_problem(url: str, extra_hosts: frozenset[str] = frozenset()) -> str | None:
    """Why pushcamp must not POST to ``url``, or None when it may.

    Allowed: https on a known push-service host, or on a host (``host`` or ``host:port``)
    the operator listed; plain http only for a listed loopback host (a local test push
    service). IP literals that are private, link-local, loopback, multicast or reserved
    are refused unless listed, and so is anything with credentials or a fragment.
    """
    if len(url) > ENDPOINT_MAX_CHARS:
        return f"must be at most {ENDPOINT_MAX_CHARS} characters"
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
    if _has_space_or_control(url):
        return "must not contain whitespace or control characters"
    netloc = f"{host}:{port}" if port is not None else host
    listed = host in extra_hosts or netloc in extra_hosts
    if parts.scheme == "http":
        if listed and _is_loopback(host):
            return None
        return (
            "must be an https URL (plain http only for a loopback host listed in "
            "PUSHCAMP_PUSH_ALLOWED_HOSTS)"
        )
    if listed:
        return None
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        if not address.is_global:
            return "must not point at a private, loopback or link-local address"
        return "must be on a known push-service host"
    if not _is_known_push_host(host):
        return "must be on a known push-service host (FCM, Mozilla, Microsoft, Apple)"
    if port not in (None, 443):
        # The push services listen on 443 only; another port would be a second
        # spelling of no real endpoint.
        return "must not name a port other than 443 on a push-service host"
    return None


# --- keys -------------------------------------------------------------------------------


def p256dh_problem(value: str) -> str | None:
    try:
        raw = b64url_decode(value)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except (ValueError, TypeError):
        return "must be a base64url P-256 public key (65-byte uncompressed point)"
    if len(raw) != 65:
        return "must be a base64url P-256 public key (65-byte uncompressed point)"
    return None


def auth_problem(value: str) -> str | None:
    try:
        raw = b64url_decode(value)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 16:
        return "must be a base64url 16-byte auth secret"
    return None


# --- language and time zone -------------------------------------------------------------


@lru_cache(maxsize=4096)
def normalise_language(value: str) -> str | None:
    """A browser locale (``en-US``, ``en_us``, ``tr``, ``zh-Hant-TW``) as the contract's
    ``ll_CC``, or None if it cannot be one. A bare language takes its most likely region
    from CLDR (``tr`` → ``tr_TR``, ``en`` → ``en_US``)."""
    if len(value) > 35:
        return None
    candidate = value.strip().replace("-", "_")
    try:
        parsed = Locale.parse(candidate)
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    region = parsed.territory
    if region is None:
        likely = Locale.parse(parsed.language).territory
        if likely is None:
            from babel.core import get_global

            subtags = get_global("likely_subtags").get(parsed.language, "")
            region = subtags.split("_")[-1] if subtags else None
        else:
            region = likely
    code = f"{parsed.language}_{region}" if region else None
    if code is None or not locales.is_locale(code) or code == locales.ALL_LANGUAGES:
        return None
    return code


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_problem(value: str) -> str | None:
    if value not in _zones():
        return "must be an IANA time zone name (e.g. Europe/Istanbul)"
    return None


# --- User-Agent -------------------------------------------------------------------------

_BROWSERS = (  # ua-parser family prefix -> the contract's d_wp_browser value
    ("Edge", "Edg"),
    ("Samsung Internet", "SamsungBrowser"),
    ("Opera", "Opera"),
    ("Chrome", "Chrome"),
    ("Chromium", "Chrome"),
    ("Firefox", "Firefox"),
    ("Mobile Safari", "Safari"),
    ("Safari", "Safari"),
)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    browser: str | None
    os: str | None
    device: str | None


@lru_cache(maxsize=2048)
def device_info(user_agent: str) -> DeviceInfo:
    """``d_wp_browser`` / ``d_wp_os`` / ``d_wp_device`` from a User-Agent string."""
    from ua_parser import parse

    if not user_agent:
        return DeviceInfo(None, None, None)
    if text.storage_problem(user_agent):
        # A header arrives as Latin-1 text, but a caller with text from elsewhere may hand
        # over a lone surrogate (ua-parser's compiled matcher encodes to UTF-8 and raises)
        # or a NUL (which a family captured from it would carry into the database).
        user_agent = user_agent.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    result = parse(user_agent[:1024])
    family = result.user_agent.family if result.user_agent else None
    browser = None
    if family:
        browser = next((name for prefix, name in _BROWSERS if family.startswith(prefix)), family)
    os_family = result.os.family if result.os else None
    device_family = (result.device.family if result.device else "") or ""
    if (
        "iPad" in device_family
        or "Tablet" in user_agent
        or (os_family == "Android" and "Mobile" not in user_agent)
    ):
        device = "tablet"
    elif os_family in ("iOS", "Android") or "Mobi" in user_agent:
        device = "mobile"
    elif family is None or family == "Other":
        device = None
    else:
        device = "desktop"
    return DeviceInfo(browser=browser[:64] if browser else None, os=os_family, device=device)


# --- the whole subscription -------------------------------------------------------------


def _string(
    data: Mapping[str, object], key: str, errors: list[FieldError], name: str = ""
) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name or key, "must be a string"))
        return None
    if problem := text.storage_problem(value):
        errors.append(FieldError(name or key, problem))
        return None
    return value


def _builtin(
    data: Mapping[str, object], key: str, where: str, errors: list[FieldError]
) -> str | None:
    """``d_wp_browser`` / ``d_wp_os`` / ``d_wp_device`` from ``data``, checked (1-64
    characters; a device is desktop, mobile or tablet); None if absent or wrong."""
    value = _string(data, key, errors, where)
    if value is None:
        return None
    if not value.strip() or len(value) > 64:
        errors.append(FieldError(where, "must be 1-64 characters"))
        return None
    if key == "d_wp_device" and value not in DEVICES:
        errors.append(FieldError(where, "must be desktop, mobile or tablet"))
        return None
    return value


def _key(
    keys: Mapping[str, object],
    name: str,
    problem_of: Callable[[str], str | None],
    errors: list[FieldError],
) -> str | None:
    """One of ``keys``, checked and in canonical base64url (no padding, no stray
    characters), so what is stored has the length the columns expect."""
    where = f"keys.{name}"
    value = _string(keys, name, errors, where)
    if value is None:
        if not any(e.field == where for e in errors):
            errors.append(FieldError(where, "is required"))
        return None
    if (problem := problem_of(value)) is not None:
        errors.append(FieldError(where, problem))
        return None
    return b64url_encode(b64url_decode(value))


def attributes_problems(value: object) -> tuple[dict[str, str] | None, list[FieldError]]:
    """Custom attributes: at most 32, names like identifiers, values strings (numbers and
    booleans are stored as their JSON text) of at most 200 characters. The built-in
    names (``d_wp_browser``, ``d_wp_os``, ``d_wp_device``) are not custom attributes:
    :func:`parse_subscription` takes them out first."""
    if value is None:
        return None, []
    if not isinstance(value, dict):
        return {}, [FieldError("attributes", "must be an object")]
    if len(value) > MAX_ATTRIBUTES:
        return {}, [FieldError("attributes", f"at most {MAX_ATTRIBUTES} attributes")]
    out: dict[str, str] = {}
    errors: list[FieldError] = []
    for name, raw in value.items():
        where = f"attributes.{name}"[:80]
        if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name):
            errors.append(FieldError(where, "invalid attribute name"))
            continue
        if name in BUILTIN_ATTRIBUTES:
            errors.append(FieldError(where, "a built-in attribute, not a custom one"))
            continue
        if isinstance(raw, bool):
            item = "true" if raw else "false"
        elif isinstance(raw, int | float) and raw == raw and abs(raw) != float("inf"):
            item = str(raw)
        elif isinstance(raw, str):
            item = text.normalise(raw)
        else:
            errors.append(FieldError(where, "must be a string, number or boolean"))
            continue
        if problem := text.storage_problem(item):
            errors.append(FieldError(where, problem))
        elif len(item) > ATTRIBUTE_VALUE_MAX_CHARS:
            errors.append(FieldError(where, f"at most {ATTRIBUTE_VALUE_MAX_CHARS} characters"))
        else:
            out[name] = item
    return out, errors


class OutOfRange(ValueError):
    """A well-formed timestamp that is before year 1 or after 9999 once in UTC."""


def parse_timestamp(value: object) -> datetime:
    """An ISO 8601 timestamp in UTC; one without an offset is taken as UTC. ValueError for
    anything else; :class:`OutOfRange` for a time that exists only in its own offset
    (``0001-01-01T00:00:00+14:00`` is before year 1 in UTC: ``astimezone`` overflows)."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        raise OutOfRange("out of range") from None


# An imported engagement time must lie between these two. Before 1970 it is a placeholder
# (0001-01-01, an epoch 0 in another unit), not an engagement. After the import's clock it
# would keep the browser "engaged" for as long as the time is ahead, so it is refused
# rather than clamped (a clamp would turn a wrong export into "engaged today"); a few
# minutes ahead is the other system's clock running fast, and is stored as the import's
# time, so that no stored engagement is ever in the future.
EARLIEST_ENGAGEMENT = datetime(1970, 1, 1, tzinfo=UTC)
ENGAGEMENT_CLOCK_SKEW = timedelta(minutes=5)
_ENGAGEMENT_RANGE = "must be from 1970-01-01T00:00:00Z to now"


def engagement_time(value: object, now: datetime) -> datetime:
    """A bulk-import line's ``last_engaged_at`` (ISO 8601, UTC when it has no offset),
    from 1970 to ``now``; up to :data:`ENGAGEMENT_CLOCK_SKEW` ahead of ``now`` is taken
    as ``now``. ValueError with the reason otherwise."""
    try:
        when = parse_timestamp(value)
    except OutOfRange:
        raise ValueError(_ENGAGEMENT_RANGE) from None
    except ValueError:
        raise ValueError("must be an ISO 8601 timestamp") from None
    if not EARLIEST_ENGAGEMENT <= when <= now + ENGAGEMENT_CLOCK_SKEW:
        raise ValueError(_ENGAGEMENT_RANGE)
    return min(when, now)


def parse_subscription(
    data: Mapping[str, object],
    *,
    allowed_hosts: frozenset[str] = frozenset(),
    user_agent: str | None = None,
    allow_last_engaged: bool = False,
    now: datetime | None = None,
) -> NewSubscription:
    """Validate a subscription object: ``PushSubscription.toJSON()``'s ``endpoint`` and
    ``keys`` plus optional ``language``, ``timezone``, ``attributes``, ``d_wp_browser``,
    ``d_wp_os``, ``d_wp_device`` (derived from ``user_agent`` when absent) and, for bulk
    import, ``last_engaged_at`` (:func:`engagement_time`, checked against ``now``, the
    clock when not given). Every offending field is named at once.

    The endpoint comes back in its canonical spelling (:func:`canonical_endpoint`). The
    built-ins may also be given inside ``attributes`` (as Insider users' data has them):
    they are checked like the top-level fields, set the built-in columns and are not
    kept as custom attributes; when both are given, the top-level field wins."""
    errors: list[FieldError] = []
    endpoint = _string(data, "endpoint", errors)
    if endpoint is None and not any(e.field == "endpoint" for e in errors):
        errors.append(FieldError("endpoint", "is required"))
    elif endpoint is not None and (problem := endpoint_problem(endpoint, allowed_hosts)):
        errors.append(FieldError("endpoint", problem))
    keys = data.get("keys")
    p256dh = auth = None
    if not isinstance(keys, dict):
        errors.append(FieldError("keys", "must be an object with p256dh and auth"))
    else:
        p256dh = _key(keys, "p256dh", p256dh_problem, errors)
        auth = _key(keys, "auth", auth_problem, errors)
    language = _string(data, "language", errors)
    if language is not None:
        normalised = normalise_language(language)
        if normalised is None:
            errors.append(FieldError("language", "must be a browser locale such as en-US"))
        language = normalised
    timezone = _string(data, "timezone", errors)
    if timezone is not None and (problem := timezone_problem(timezone)):
        errors.append(FieldError("timezone", problem))
    raw_attributes = data.get("attributes")
    builtin_attributes: dict[str, object] = {}
    if isinstance(raw_attributes, dict):
        # Built-ins given as attributes (how Insider users' data names them) are taken
        # as the built-ins, never stored as custom attributes.
        builtin_attributes = {
            k: raw_attributes[k] for k in BUILTIN_ATTRIBUTES if k in raw_attributes
        }
        raw_attributes = {k: v for k, v in raw_attributes.items() if k not in BUILTIN_ATTRIBUTES}
    attributes, attribute_errors = attributes_problems(raw_attributes)
    errors.extend(attribute_errors)
    given = {key: _builtin(data, key, key, errors) for key in BUILTIN_ATTRIBUTES}
    for key in BUILTIN_ATTRIBUTES:
        # The top-level field wins when both are given; the attribute is checked alike.
        in_attributes = _builtin(builtin_attributes, key, f"attributes.{key}", errors)
        given[key] = given[key] if given[key] is not None else in_attributes
    last_engaged_at = None
    if allow_last_engaged and data.get("last_engaged_at") is not None:
        try:
            last_engaged_at = engagement_time(data["last_engaged_at"], now or datetime.now(UTC))
        except ValueError as exc:
            errors.append(FieldError("last_engaged_at", str(exc)))
    if errors:
        raise InvalidRequest(errors)
    assert endpoint is not None and p256dh is not None and auth is not None
    derived = device_info(user_agent) if user_agent else DeviceInfo(None, None, None)
    return NewSubscription(
        endpoint=canonical_endpoint(endpoint),
        p256dh=p256dh,
        auth=auth,
        language=language,
        timezone=timezone,
        browser=given["d_wp_browser"] or derived.browser,
        os=given["d_wp_os"] or derived.os,
        device=given["d_wp_device"] or derived.device,
        attributes=attributes,
        last_engaged_at=last_engaged_at,
    )
