"""Credentials: header forms the published client uses, and VAPID key import that keeps
existing browser subscriptions valid."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushcamp import webpush
from pushcamp.errors import InvalidRequest
from pushcamp.services import keys
from pushcamp.services.tokens import _token_from_header


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc ", "abc"),
        ("abc", "abc"),
        ("Basic abc", None),
        ("Bearer", "Bearer"),  # a bare value is taken as the token (and then fails lookup)
        ("Bearer a b", None),
        ("", None),
        (None, None),
    ],
)
def test_authorization_header_forms(header: str | None, token: str | None) -> None:
    assert _token_from_header(header) == token


def test_generated_pair_is_p256_and_repr_hides_private_key() -> None:
    pair = keys.generate()
    assert len(webpush.b64url_decode(pair.public_key)) == 65
    assert len(webpush.b64url_decode(pair.private_key)) == 32
    assert pair.private_key not in repr(pair)


def test_import_accepts_raw_pem_and_der_forms() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    expected = keys._pair(private)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    import base64

    for form in (expected.private_key, pem, base64.b64encode(der).decode()):
        assert keys.import_pair(expected.public_key, form) == expected


def test_import_refuses_mismatched_or_foreign_keys() -> None:
    a, b = keys.generate(), keys.generate()
    with pytest.raises(InvalidRequest):
        keys.import_pair(a.public_key, b.private_key)
    other_curve = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidRequest):
        keys.import_pair(a.public_key, other_curve.decode())
    with pytest.raises(InvalidRequest):
        keys.import_pair(a.public_key, "not a key")
