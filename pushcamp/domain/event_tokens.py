"""Per-delivery event tokens: what lets a service worker report ``delivered``, ``clicked``
or ``closed`` for one push without anyone being able to forge or inflate statistics.

The sender puts a token in each push payload; the service worker sends it back with the
event. The token names the partner, the launch and the subscriber, carries an expiry, and
is signed with the partner's own HMAC-SHA256 key (``partners.signing_key``, never sent
anywhere). Replays are not this module's business: the ``events`` table counts each
(launch, subscriber, type) at most once.

Format, ASCII only, URL- and JSON-safe without escaping::

    pc1~<partner_id>~<launch_id>~<subscriber_id>~<expires_at>~<base64url HMAC>

``~`` separates because partner ids may contain ``.``, ``_`` and ``-`` but never ``~``.
Numbers are plain decimal without leading zeros, so each claim has exactly one spelling:
the signature is checked over the re-serialised claim, and a token whose text differs
from that canonical form is malformed rather than "the same token written differently".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac

from pushcamp.domain.partners import PARTNER_ID_PATTERN
from pushcamp.encoding import b64url_decode, b64url_encode
from pushcamp.errors import InvalidRequest

VERSION = "pc1"
SEPARATOR = "~"
EVENT_TOKEN_LIFETIME = 30 * 24 * 3600  # seconds: a browser offline for weeks still counts
# Longest well-formed token: 3 + 64 + 3 * 19 + 43 + 5 separators is about 172 characters.
MAX_TOKEN_CHARS = 256
_MAX_ID = 2**63 - 1
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, unpadded base64url


@dataclass(frozen=True, slots=True)
class EventClaim:
    """What a verified token says: this partner's launch reached this subscriber."""

    partner_id: str
    launch_id: int
    subscriber_id: int
    expires_at: int


def _message(partner_id: str, launch_id: int, subscriber_id: int, expires_at: int) -> str:
    return SEPARATOR.join(
        (VERSION, partner_id, str(launch_id), str(subscriber_id), str(expires_at))
    )


def _mac(key: bytes, message: str) -> hmac.HMAC:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(message.encode("ascii"))
    return mac


def sign(key: bytes, partner_id: str, launch_id: int, subscriber_id: int, expires_at: int) -> str:
    """A token for one push (``expires_at`` in unix seconds)."""
    return TokenSigner(key, partner_id, launch_id, expires_at).sign(subscriber_id)


class TokenSigner:
    """:func:`sign` for the subscribers of one launch: the claims they share checked and
    the key set up once, then a copy of the keyed HMAC per token."""

    __slots__ = ("_mac", "_prefix", "_suffix")

    def __init__(self, key: bytes, partner_id: str, launch_id: int, expires_at: int) -> None:
        if not key:
            raise ValueError("empty signing key")
        if not PARTNER_ID_PATTERN.fullmatch(partner_id):
            raise ValueError("invalid partner id")
        if not 1 <= launch_id <= _MAX_ID:
            raise ValueError("ids must be positive 64-bit integers")
        if not 0 <= expires_at <= _MAX_ID:
            raise ValueError("expires_at must be a non-negative 64-bit integer")
        self._prefix = f"{VERSION}{SEPARATOR}{partner_id}{SEPARATOR}{launch_id}{SEPARATOR}"
        self._suffix = f"{SEPARATOR}{expires_at}"
        self._mac = hmac.HMAC(key, hashes.SHA256())

    def sign(self, subscriber_id: int) -> str:
        if not 1 <= subscriber_id <= _MAX_ID:
            raise ValueError("ids must be positive 64-bit integers")
        message = f"{self._prefix}{subscriber_id}{self._suffix}"
        mac = self._mac.copy()
        mac.update(message.encode("ascii"))
        return f"{message}{SEPARATOR}{b64url_encode(mac.finalize())}"


def _number(text: str, minimum: int) -> int | None:
    # isascii: str.isdigit() also accepts "٣" and "²"; no leading zeros: one spelling only.
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    if len(text) > 1 and text[0] == "0":
        return None
    value = int(text)
    return value if minimum <= value <= _MAX_ID else None


def _parse(token: object) -> tuple[EventClaim, str, str] | None:
    """The claim, the signed message and the signature text; None if malformed."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    parts = token.split(SEPARATOR)
    if len(parts) != 6 or parts[0] != VERSION:
        return None
    _, partner_id, launch, subscriber, expires, signature = parts
    if not PARTNER_ID_PATTERN.fullmatch(partner_id):
        return None
    launch_id, subscriber_id = _number(launch, 1), _number(subscriber, 1)
    expires_at = _number(expires, 0)
    if launch_id is None or subscriber_id is None or expires_at is None:
        return None
    if not _SIGNATURE.fullmatch(signature):
        return None
    claim = EventClaim(partner_id, launch_id, subscriber_id, expires_at)
    return claim, _message(partner_id, launch_id, subscriber_id, expires_at), signature


def peek_partner(token: str) -> str | None:
    """The partner a token claims to be for, unverified: only to find whose key checks it."""
    parsed = _parse(token)
    return parsed[0].partner_id if parsed else None


def verify(key: bytes, token: str, now: int) -> EventClaim:
    """Check the signature (in constant time) and the expiry; 400 on ``token`` otherwise."""
    parsed = _parse(token)
    if parsed is None:
        raise InvalidRequest.of("token", "malformed event token")
    claim, message, signature = parsed
    try:
        given = b64url_decode(signature)
    except ValueError:
        raise InvalidRequest.of("token", "malformed event token") from None
    # Only the canonical spelling of the signature is accepted (the decoder is lenient).
    if len(given) != 32 or b64url_encode(given) != signature:
        raise InvalidRequest.of("token", "malformed event token")
    try:
        _mac(key, message).verify(given)
    except InvalidSignature:
        raise InvalidRequest.of("token", "invalid signature") from None
    if claim.expires_at <= now:
        raise InvalidRequest.of("token", "expired")
    return claim
