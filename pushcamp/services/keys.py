"""VAPID key pairs as pushcamp stores them: base64url public point and private scalar."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushcamp import webpush
from pushcamp.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class VapidKeyPair:
    public_key: str
    # repr=False: a key pair printed by accident (a log line, a traceback) shows no secret.
    private_key: str = field(repr=False)


def generate() -> VapidKeyPair:
    return _pair(ec.generate_private_key(ec.SECP256R1()))


def _pair(private: ec.EllipticCurvePrivateKey) -> VapidKeyPair:
    public = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    return VapidKeyPair(
        public_key=webpush.b64url_encode(public), private_key=webpush.b64url_encode(scalar)
    )


def parse_private_key(value: str) -> ec.EllipticCurvePrivateKey:
    """Accept the forms other Web Push tools hand out (base64url scalar, PEM, base64 DER),
    as the protocol library reads them; a refusal names the field."""
    try:
        return webpush.load_private_key(value.strip())
    except webpush.InvalidVapid as exc:
        raise InvalidRequest.of("private_key", "not a P-256 private key") from exc


def import_pair(public_key: str, private_key: str) -> VapidKeyPair:
    """Validate an existing key pair: the public key must be the private key's own point,
    or every browser subscribed with it would reject our pushes."""
    pair = _pair(parse_private_key(private_key))
    try:
        given = webpush.b64url_decode(public_key)
    except ValueError as exc:
        raise InvalidRequest.of("public_key", "not base64url") from exc
    if webpush.b64url_encode(given) != pair.public_key:
        raise InvalidRequest.of(
            "public_key", "is not the public key of the given private key (uncompressed P-256)"
        )
    return pair
