"""VAPID (RFC 8292): tokens a push service accepts, signed once per push service and
renewed well before they expire, with contacts Apple would not refuse."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from pushcamp.webpush import (
    InvalidVapid,
    Vapid,
    check_subject,
    load_private_key,
    verify_authorization,
)
from pushcamp.webpush._base64 import b64url_decode

CONTACT = "mailto:push-ops@pushcamp.dev"
ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc:def"
ORIGIN = "https://fcm.googleapis.com"
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _parts(header: str) -> tuple[dict[str, object], dict[str, object], bytes, str]:
    token = header.split("t=")[1].split(",")[0]
    key = header.split("k=")[1]
    head, body, sig = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body)), b64url_decode(sig), key


def test_header_is_an_es256_jwt_verifiable_with_k() -> None:
    vapid = Vapid.generate(CONTACT, clock=Clock())
    header = vapid.authorization(ENDPOINT)
    assert header.startswith("vapid t=") and f", k={vapid.public_key}" in header
    jose, claims, sig, key = _parts(header)
    assert jose == {"typ": "JWT", "alg": "ES256"}
    assert claims == {"sub": CONTACT, "aud": ORIGIN, "exp": int(T0 + 12 * 3600)}
    # Check the raw r||s signature independently of our verifier.
    token = header.split("t=")[1].split(",")[0]
    signing_input = token.rsplit(".", 1)[0].encode()
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))  # raises if wrong
    assert len(sig) == 64


def test_verify_accepts_our_header_and_reports_claims() -> None:
    vapid = Vapid.generate(CONTACT, clock=Clock())
    verified = verify_authorization(vapid.authorization(ENDPOINT), ORIGIN, now=T0)
    assert verified.claims["sub"] == CONTACT
    assert verified.public_key == vapid.public_key


def test_signs_once_per_origin_not_per_message() -> None:
    vapid = Vapid.generate(CONTACT, clock=Clock())
    first = vapid.authorization(ENDPOINT)
    assert vapid.authorization("https://fcm.googleapis.com/fcm/send/other") == first
    other = vapid.authorization("https://updates.push.services.mozilla.com/wpush/v2/x")
    assert other != first
    assert _parts(other)[1]["aud"] == "https://updates.push.services.mozilla.com"


def test_token_is_renewed_well_before_expiry() -> None:
    clock = Clock()
    vapid = Vapid.generate(CONTACT, clock=clock)
    first = vapid.authorization(ENDPOINT)
    clock.now = T0 + 5 * 3600  # 7 h left of 12: still used
    assert vapid.authorization(ENDPOINT) == first
    clock.now = T0 + 6 * 3600 + 1  # under half the lifetime left: replaced
    renewed = vapid.authorization(ENDPOINT)
    assert renewed != first
    exp = _parts(renewed)[1]["exp"]
    assert isinstance(exp, int) and exp - clock.now <= 24 * 3600
    verify_authorization(renewed, ORIGIN, now=clock.now)


def test_lifetime_over_24_hours_is_refused() -> None:
    with pytest.raises(InvalidVapid):
        Vapid.generate(CONTACT, lifetime=24 * 3600 + 1)


def test_callers_claims_are_never_mutated() -> None:
    claims = {"jti": "launch-1"}
    vapid = Vapid.generate(CONTACT, claims=claims, clock=Clock())
    vapid.authorization(ENDPOINT)
    assert claims == {"jti": "launch-1"}
    assert _parts(vapid.authorization(ENDPOINT))[1]["jti"] == "launch-1"


def test_aud_and_exp_cannot_be_forced_by_the_caller() -> None:
    with pytest.raises(InvalidVapid):
        Vapid.generate(CONTACT, claims={"aud": "https://evil.pushcamp.dev"})


@pytest.mark.parametrize(
    "sub",
    [
        "mailto:push-ops@pushcamp.dev",
        "mailto:a@mail.company.co.uk",
        "https://pushcamp.dev/contact",
    ],
)
def test_real_contacts_are_accepted(sub: str) -> None:
    assert check_subject(sub) == sub


@pytest.mark.parametrize(
    "sub",
    [
        "mailto:admin@localhost",
        "mailto:you@example.com",
        "mailto:me@example.org",
        "mailto:ops@shop.test",
        "mailto:ops@printer.local",
        "mailto:ops@127.0.0.1",
        "mailto:nobody",
        "mailto:@pushcamp.dev",
        "https://localhost/contact",
        "https://example.com",
        "https://192.168.1.2/",
        "http://pushcamp.dev",
        "push-ops@pushcamp.dev",
        "",
    ],
)
def test_placeholder_or_local_contacts_are_refused(sub: str) -> None:
    with pytest.raises(InvalidVapid):
        check_subject(sub)


def test_private_key_forms_load_to_the_same_key() -> None:
    vapid = Vapid.generate(CONTACT)
    raw = vapid.private_key_b64()
    key = load_private_key(raw)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    for form in (raw, pem):
        assert Vapid(form, CONTACT).public_key == vapid.public_key
    assert raw not in repr(vapid)


@pytest.mark.parametrize("value", ["", "abc", "-----BEGIN PRIVATE KEY-----\nxx\n"])
def test_garbage_private_keys_are_refused(value: str) -> None:
    with pytest.raises(InvalidVapid):
        load_private_key(value)


def _header_with(vapid: Vapid, claims: dict[str, object]) -> str:
    return f"vapid t={vapid.sign(claims)}, k={vapid.public_key}"


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "https://other.push.dev", "exp": int(T0 + 60), "sub": CONTACT},
        {"aud": ORIGIN, "exp": int(T0 - 1), "sub": CONTACT},
        {"aud": ORIGIN, "exp": int(T0 + 25 * 3600), "sub": CONTACT},
        {"aud": ORIGIN, "sub": CONTACT},
        {"aud": ORIGIN, "exp": int(T0 + 60)},
    ],
)
def test_verify_refuses_wrong_aud_bad_exp_or_no_sub(claims: dict[str, object]) -> None:
    with pytest.raises(InvalidVapid):
        verify_authorization(_header_with(Vapid.generate(CONTACT), claims), ORIGIN, now=T0)


def test_verify_refuses_a_token_signed_by_another_key() -> None:
    signer, other = Vapid.generate(CONTACT), Vapid.generate(CONTACT)
    token = signer.sign({"aud": ORIGIN, "exp": int(T0 + 60), "sub": CONTACT})
    with pytest.raises(InvalidVapid):
        verify_authorization(f"vapid t={token}, k={other.public_key}", ORIGIN, now=T0)


@pytest.mark.parametrize(
    "header", ["", "Bearer abc", "vapid t=abc", "vapid k=abc", "WebPush x.y.z"]
)
def test_verify_refuses_malformed_headers(header: str) -> None:
    with pytest.raises(InvalidVapid):
        verify_authorization(header, ORIGIN, now=T0)
