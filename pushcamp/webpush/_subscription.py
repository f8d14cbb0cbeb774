"""A browser's push subscription: where to POST and the keys to encrypt for."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from pushcamp.webpush._base64 import b64url_decode, b64url_encode
from pushcamp.webpush._errors import InvalidSubscription

#: The curve of every Web Push key (RFC 8291): made once, used per subscription and message.
P256 = ec.SECP256R1()


def origin_of(url: str) -> str:
    """The RFC 6454 origin of ``url`` (``scheme://host[:port]``, default port left out):
    the VAPID ``aud`` and the key under which connections and tokens are shared."""
    # Every subscription of a push service shares the part before the path, so parse
    # that once (a full urlsplit per message costs as much as a tenth of sending it).
    head = "/".join(url.split("/", 3)[:3])
    if "?" in head or "#" in head or "\\" in head:
        return _origin(url)
    return _origin(head)


@lru_cache(maxsize=1024)
def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidSubscription(f"endpoint is not a URL: {url!r}") from exc
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("https", "http") or not host:
        raise InvalidSubscription(f"endpoint must be an http(s) URL with a host: {url!r}")
    if ":" in host:  # an IPv6 literal keeps its brackets in an origin
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class Subscription:
    """``PushSubscription.toJSON()`` in Python: ``endpoint`` plus the base64url ``p256dh``
    (the browser's P-256 public key) and ``auth`` (its 16-byte secret).

    The keys are checked and parsed once, here, so a broken subscription fails when it is
    built rather than in the middle of a send.
    """

    endpoint: str
    p256dh: str
    auth: str
    origin: str = field(init=False, repr=False, compare=False)
    _public_key: ec.EllipticCurvePublicKey = field(init=False, repr=False, compare=False)
    _public_bytes: bytes = field(init=False, repr=False, compare=False)
    _auth_secret: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            point = b64url_decode(self.p256dh)
            secret = b64url_decode(self.auth)
        except ValueError as exc:
            raise InvalidSubscription("keys.p256dh and keys.auth must be base64url") from exc
        if len(point) != 65 or point[0] != 4:
            raise InvalidSubscription("keys.p256dh must be an uncompressed P-256 point")
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(P256, point)
        except ValueError as exc:
            raise InvalidSubscription("keys.p256dh is not a point on P-256") from exc
        if len(secret) != 16:
            raise InvalidSubscription("keys.auth must be 16 bytes")
        # frozen: these derived fields are set once, here, and never change.
        object.__setattr__(self, "origin", origin_of(self.endpoint))
        object.__setattr__(self, "_public_key", key)
        object.__setattr__(self, "_public_bytes", point)
        object.__setattr__(self, "_auth_secret", secret)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> Subscription:
        """Build from ``PushSubscription.toJSON()`` (a mapping or its JSON text)."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise InvalidSubscription("subscription is not JSON") from exc
        if not isinstance(data, Mapping):
            raise InvalidSubscription("subscription must be a JSON object")
        keys = data.get("keys")
        endpoint = data.get("endpoint")
        if not isinstance(keys, Mapping) or not isinstance(endpoint, str):
            raise InvalidSubscription("subscription needs endpoint and keys")
        p256dh, auth = keys.get("p256dh"), keys.get("auth")
        if not isinstance(p256dh, str) or not isinstance(auth, str):
            raise InvalidSubscription("subscription needs keys.p256dh and keys.auth")
        return cls(endpoint=endpoint, p256dh=p256dh, auth=auth)

    def to_json(self) -> dict[str, Any]:
        """The ``PushSubscription.toJSON()`` shape, with canonical unpadded base64url."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {
                "p256dh": b64url_encode(self._public_bytes),
                "auth": b64url_encode(self._auth_secret),
            },
        }
