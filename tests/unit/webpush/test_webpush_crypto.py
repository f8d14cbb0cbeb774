"""Encryption (RFC 8291 / RFC 8188 aes128gcm): byte-exact against the RFC's example,
readable by an independent implementation, and never larger than a push service takes."""

from __future__ import annotations

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushcamp.webpush import (
    MAX_MESSAGE_SIZE,
    MAX_PAYLOAD_SIZE,
    DecryptionFailed,
    InvalidSubscription,
    PayloadTooLarge,
    Subscription,
    decrypt,
    encrypt,
)
from pushcamp.webpush._base64 import b64url_decode, b64url_encode
from pushcamp.webpush._crypto import encrypt_with

# RFC 8291 Appendix A (published test data, not credentials).
RFC_PLAINTEXT = b"When I grow up, I want to be a watermelon"
RFC_AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
RFC_UA_PRIVATE = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
RFC_UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
RFC_AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
RFC_SALT = "DGv6ra1nlYgDCS1FRnbzlw"
RFC_BODY = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYW"
    "AmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQ"
    "exSgSxsj_Qulcy4a-fN"
)


def _private(b64: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(b64url_decode(b64), "big"), ec.SECP256R1())


def _browser() -> tuple[ec.EllipticCurvePrivateKey, bytes, Subscription]:
    """A browser's side of a subscription: private key, auth secret, and the public JSON."""
    key = ec.generate_private_key(ec.SECP256R1())
    auth = b"\x07" * 16
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    sub = Subscription("https://push.pushcamp.dev/x", b64url_encode(point), b64url_encode(auth))
    return key, auth, sub


RFC_SUBSCRIPTION = Subscription("https://push.pushcamp.dev/rfc", RFC_UA_PUBLIC, RFC_AUTH)


def test_reproduces_rfc_8291_appendix_a_byte_for_byte() -> None:
    body = encrypt_with(
        RFC_PLAINTEXT,
        RFC_SUBSCRIPTION,
        ephemeral_key=_private(RFC_AS_PRIVATE),
        salt=b64url_decode(RFC_SALT),
    )
    assert b64url_encode(body) == RFC_BODY


def test_decrypts_the_rfc_example() -> None:
    plain = decrypt(b64url_decode(RFC_BODY), _private(RFC_UA_PRIVATE), b64url_decode(RFC_AUTH))
    assert plain == RFC_PLAINTEXT


@pytest.mark.parametrize("size", [0, 1, 200, 1000, MAX_PAYLOAD_SIZE])
def test_every_message_decrypts_with_independent_http_ece(size: int) -> None:
    key, auth, sub = _browser()
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    body = encrypt(payload, sub)
    assert http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm") == payload
    assert len(body) <= MAX_MESSAGE_SIZE


def test_http_ece_messages_decrypt_with_ours() -> None:
    """The other direction: our receiver (used by the simulator) reads a foreign sender,
    including one that pads and splits into several records."""
    key, auth, _ = _browser()
    ours = key.public_key()
    sender = ec.generate_private_key(ec.SECP256R1())
    body = http_ece.encrypt(
        b"hello" * 40, private_key=sender, dh=ours, auth_secret=auth, rs=64, version="aes128gcm"
    )
    assert decrypt(body, key, auth) == b"hello" * 40


def test_each_message_has_a_fresh_ephemeral_key_and_salt() -> None:
    _, _, sub = _browser()
    first, second = encrypt(b"same", sub), encrypt(b"same", sub)
    assert first[:16] != second[:16]  # salt
    assert first[21:86] != second[21:86]  # ephemeral public key (the key id)


def test_header_declares_one_4096_byte_record_and_a_65_byte_key_id() -> None:
    _, _, sub = _browser()
    body = encrypt(b"x", sub)
    assert body[16:20] == (4096).to_bytes(4, "big")
    assert body[20] == 65 and body[21] == 4
    assert len(body) == 86 + 1 + 1 + 16  # header, plaintext, delimiter, tag


def test_payload_one_byte_over_the_limit_is_refused_before_anything_else() -> None:
    _, _, sub = _browser()
    with pytest.raises(PayloadTooLarge) as info:
        encrypt(b"x" * (MAX_PAYLOAD_SIZE + 1), sub)
    assert MAX_PAYLOAD_SIZE == 3993
    assert "3993" in str(info.value)


def test_tampered_message_is_refused() -> None:
    key, auth, sub = _browser()
    body = bytearray(encrypt(b"secret", sub))
    body[-1] ^= 1
    with pytest.raises(DecryptionFailed):
        decrypt(bytes(body), key, auth)


def test_wrong_auth_secret_is_refused() -> None:
    key, _, sub = _browser()
    with pytest.raises(DecryptionFailed):
        decrypt(encrypt(b"secret", sub), key, b"\x00" * 16)


@pytest.mark.parametrize(
    ("p256dh", "auth"),
    [
        ("not base64!!", RFC_AUTH),
        (b64url_encode(b"\x04" + b"\x01" * 64), RFC_AUTH),  # not on the curve
        (RFC_UA_PUBLIC[:40], RFC_AUTH),  # truncated
        (RFC_UA_PUBLIC, b64url_encode(b"short")),
    ],
)
def test_broken_subscription_keys_fail_when_built(p256dh: str, auth: str) -> None:
    with pytest.raises(InvalidSubscription):
        Subscription("https://push.pushcamp.dev/x", p256dh, auth)


def test_subscription_round_trips_push_subscription_to_json() -> None:
    data = {
        "endpoint": "https://fcm.googleapis.com/fcm/send/abc",
        "expirationTime": None,
        "keys": {"p256dh": RFC_UA_PUBLIC, "auth": RFC_AUTH},
    }
    sub = Subscription.from_json(data)
    assert sub.to_json() == data
    assert sub.origin == "https://fcm.googleapis.com"
