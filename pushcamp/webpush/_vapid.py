"""VAPID (RFC 8292): the ES256 JWT that identifies the application server.

Why the JWT is assembled here rather than with PyJWT: Web Push needs exactly one shape of
token — a fixed header ``{"typ":"JWT","alg":"ES256"}``, three or four claims, and an
ECDSA P-256 signature in the raw ``r || s`` form of RFC 7518 section 3.4. Building it
takes a dozen lines over ``cryptography`` (which signs and verifies; we only re-encode
the DER signature), adds no dependency, and keeps the one subtle step — DER to raw
``r || s`` — visible and tested against RFC 7515 verification in the simulator. A general
JWT library would also have to be told to refuse every other algorithm on the verifying
side; here no other algorithm exists.

Tokens are cached per push-service origin (``aud``) inside one :class:`Vapid`, i.e. per
(key, origin): a campaign to a million browsers on four push services signs four tokens,
not a million. A token lives ``lifetime`` (12 h by default, 24 h at most, as RFC 8292
allows) and is replaced once half of it has passed, so a token in flight never expires
on the way even with clock skew between us and the push service.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from pushcamp.webpush._base64 import b64url_decode, b64url_encode
from pushcamp.webpush._errors import InvalidVapid
from pushcamp.webpush._subscription import origin_of

#: RFC 8292 section 2: ``exp`` must not be more than 24 hours after the request.
MAX_LIFETIME = 24 * 3600.0
DEFAULT_LIFETIME = 12 * 3600.0

_HEADER = b64url_encode(b'{"typ":"JWT","alg":"ES256"}')
_ES256 = ec.ECDSA(hashes.SHA256())
_RESERVED_CLAIMS = frozenset({"aud", "exp"})
# Contacts push services refuse or that reach nobody: RFC 2606/6761 names and the
# template placeholders people forget to replace. Apple answers BadJwtToken to these.
_PLACEHOLDER_DOMAINS = frozenset(
    {
        "localhost",
        "example.com",
        "example.net",
        "example.org",
        "yourdomain.com",
        "your-domain.com",
        "mydomain.com",
        "domain.com",
    }
)
_PLACEHOLDER_SUFFIXES = (
    ".localhost",
    ".local",
    ".example",
    ".test",
    ".invalid",
    ".internal",
    ".localdomain",
)


def load_private_key(value: str | bytes | ec.EllipticCurvePrivateKey) -> ec.EllipticCurvePrivateKey:
    """Load a P-256 private key from the forms Web Push tools hand out: a key object, a
    base64url 32-byte scalar (most providers), PEM, or base64 DER (pywebpush's files)."""
    if isinstance(value, ec.EllipticCurvePrivateKey):
        key: object = value
    else:
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        text = text.strip()
        try:
            if text.startswith("-----BEGIN"):
                key = serialization.load_pem_private_key(text.encode(), password=None)
            else:
                raw = b64url_decode(text)
                if len(raw) == 32:
                    key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
                else:
                    key = serialization.load_der_private_key(raw, password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidVapid("not a P-256 private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InvalidVapid("not a P-256 private key")
    return key


def _host_is_placeholder(host: str) -> bool:
    host = host.lower().rstrip(".")
    if not host or "." not in host or host in _PLACEHOLDER_DOMAINS:
        return True
    if host.endswith(_PLACEHOLDER_SUFFIXES):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True  # an IP literal is no contact a push-service operator can use


def check_subject(sub: str) -> str:
    """Return ``sub`` if it is a usable VAPID contact (``mailto:`` or ``https:``), else
    raise :class:`InvalidVapid`. Placeholders and local names are refused: Apple rejects
    them, and a push-service operator could not reach you through them anyway."""
    if not isinstance(sub, str):
        raise InvalidVapid("sub must be a string")
    if sub.startswith("mailto:"):
        address = sub[len("mailto:") :]
        local, at, domain = address.rpartition("@")
        if not at or not local or " " in address or _host_is_placeholder(domain):
            raise InvalidVapid(f"sub {sub!r} is not a reachable mailto: contact")
        return sub
    if sub.startswith("https://"):
        try:
            host = urlsplit(sub).hostname or ""
        except ValueError as exc:
            raise InvalidVapid(f"sub {sub!r} is not a URL") from exc
        if _host_is_placeholder(host):
            raise InvalidVapid(f"sub {sub!r} is not a reachable https: contact")
        return sub
    raise InvalidVapid("sub must be a mailto: or https: contact")


def _public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url_encode(point)


class Vapid:
    """One application server identity: a P-256 key pair and a contact (``sub``).

    :meth:`authorization` gives the ``Authorization`` header value for an endpoint or
    origin, signing at most once per origin per half-lifetime. ``claims`` are extra JWT
    claims; they are copied, never modified. ``clock`` (seconds since the epoch) is a
    test seam.
    """

    def __init__(
        self,
        private_key: str | bytes | ec.EllipticCurvePrivateKey,
        sub: str,
        *,
        claims: Mapping[str, Any] | None = None,
        lifetime: float = DEFAULT_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 60 <= lifetime <= MAX_LIFETIME:
            raise InvalidVapid("lifetime must be between 60 seconds and 24 hours")
        extra = dict(claims or {})
        if _RESERVED_CLAIMS & extra.keys():
            raise InvalidVapid("aud and exp are set per push service; do not pass them")
        self._key = load_private_key(private_key)
        self._claims = {**extra, "sub": check_subject(sub)}
        self._lifetime = lifetime
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}  # origin -> (header value, exp)
        self.public_key = _public_key_b64(self._key)
        """The application server key (base64url uncompressed point): the browser's
        ``applicationServerKey`` and the header's ``k=``."""

    @classmethod
    def generate(cls, sub: str, **kwargs: Any) -> Vapid:
        """A new identity with a fresh key pair."""
        return cls(ec.generate_private_key(ec.SECP256R1()), sub, **kwargs)

    @property
    def sub(self) -> str:
        return str(self._claims["sub"])

    def private_key_b64(self) -> str:
        """The private scalar as base64url, the form to store and to import elsewhere."""
        return b64url_encode(self._key.private_numbers().private_value.to_bytes(32, "big"))

    def __repr__(self) -> str:  # never the private key, even by accident in a log
        return f"Vapid(public_key={self.public_key!r}, sub={self.sub!r})"

    def authorization(self, endpoint_or_origin: str) -> str:
        """``vapid t=<JWT>, k=<public key>`` for the push service serving this URL."""
        now = self._clock()
        # Tokens are kept by origin: given one (as the sender does), no parsing at all.
        cached = self._tokens.get(endpoint_or_origin)
        if cached is not None and cached[1] - now > self._lifetime / 2:
            return cached[0]
        origin = origin_of(endpoint_or_origin)  # cached: cheap for the same push service
        cached = self._tokens.get(origin)
        if cached is not None and cached[1] - now > self._lifetime / 2:
            return cached[0]
        exp = int(now + self._lifetime)
        token = self.sign({**self._claims, "aud": origin, "exp": exp})
        value = f"vapid t={token}, k={self.public_key}"
        self._tokens[origin] = (value, exp)
        return value

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A compact ES256 JWS of ``claims`` (no checks: :meth:`authorization` is the
        normal way in)."""
        body = b64url_encode(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{_HEADER}.{body}"
        r, s = decode_dss_signature(self._key.sign(signing_input.encode("ascii"), _ES256))
        return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@dataclass(frozen=True)
class VerifiedToken:
    """What a push service learns from a valid VAPID header."""

    claims: dict[str, Any]
    public_key: str  # base64url, as sent in k=
    exp: int


def verify_authorization(header: str, audience: str, *, now: float | None = None) -> VerifiedToken:
    """Check an ``Authorization: vapid t=…, k=…`` header as a push service does: ES256
    signature by ``k``, ``aud`` equal to ``audience``, ``exp`` in the future and at most
    24 hours ahead, ``sub`` present. Raises :class:`InvalidVapid`."""
    scheme, _, params = header.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise InvalidVapid("authorization scheme is not vapid")
    fields: dict[str, str] = {}
    for part in params.split(","):
        name, eq, value = part.strip().partition("=")
        if eq:
            fields[name.strip().lower()] = value.strip()
    token, key_b64 = fields.get("t", ""), fields.get("k", "")
    pieces = token.split(".")
    if len(pieces) != 3 or not key_b64:
        raise InvalidVapid("vapid header needs t=<JWT> and k=<key>")
    try:
        header_json = json.loads(b64url_decode(pieces[0]))
        claims = json.loads(b64url_decode(pieces[1]))
        signature = b64url_decode(pieces[2])
        public = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64url_decode(key_b64)
        )
    except ValueError as exc:
        raise InvalidVapid("malformed token or key") from exc
    if not isinstance(header_json, dict) or header_json.get("alg") != "ES256":
        raise InvalidVapid("token alg must be ES256")
    if not isinstance(claims, dict) or len(signature) != 64:
        raise InvalidVapid("malformed token")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public.verify(der, f"{pieces[0]}.{pieces[1]}".encode("ascii"), _ES256)
    except InvalidSignature as exc:
        raise InvalidVapid("token signature does not verify with k") from exc
    if claims.get("aud") != audience:
        raise InvalidVapid(f"token aud {claims.get('aud')!r} is not {audience!r}")
    exp = claims.get("exp")
    current = time.time() if now is None else now
    if not isinstance(exp, int) or exp <= current:
        raise InvalidVapid("token expired or without exp")
    if exp > current + MAX_LIFETIME + 60:  # a minute of grace for clock skew
        raise InvalidVapid("token exp is more than 24 hours ahead")
    if not isinstance(claims.get("sub"), str):
        raise InvalidVapid("token has no sub")
    return VerifiedToken(claims=claims, public_key=b64url_encode(b64url_decode(key_b64)), exp=exp)
