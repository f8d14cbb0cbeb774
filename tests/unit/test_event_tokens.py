"""Event tokens: a token verifies only with the key that signed it, only as it was
issued (no field can be changed), only before it expires; anything malformed is a 400 on
``token``, never an exception of another kind."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from pushcamp.domain.event_tokens import (
    EVENT_TOKEN_LIFETIME,
    MAX_TOKEN_CHARS,
    EventClaim,
    TokenSigner,
    peek_partner,
    sign,
    verify,
)
from pushcamp.errors import InvalidRequest

KEY = bytes(range(32))
NOW = 1_800_000_000
EXPIRES = NOW + EVENT_TOKEN_LIFETIME


def token(partner: str = "100000001", launch: int = 42, sub: int = 7, exp: int = EXPIRES) -> str:
    return sign(KEY, partner, launch, sub, exp)


def refused(value: str, key: bytes = KEY, now: int = NOW) -> str:
    with pytest.raises(InvalidRequest) as caught:
        verify(key, value, now)
    (error,) = caught.value.errors
    assert error.field == "token"
    return error.reason


def test_round_trip() -> None:
    value = token()
    assert verify(KEY, value, NOW) == EventClaim("100000001", 42, 7, EXPIRES)
    assert peek_partner(value) == "100000001"


def test_signature_is_hmac_sha256_of_the_claim_as_written() -> None:
    # Checked with the standard library's HMAC, not pushcamp's code.
    value = token("shop.example", 42, 7, EXPIRES)
    message, _, signature = value.rpartition("~")
    assert message == f"pc1~shop.example~42~7~{EXPIRES}"
    expected = hmac.digest(KEY, message.encode("ascii"), hashlib.sha256)
    assert signature == base64.urlsafe_b64encode(expected).rstrip(b"=").decode("ascii")


def test_one_signer_per_launch_signs_each_subscriber_as_sign_does() -> None:
    signer = TokenSigner(KEY, "100000001", 42, EXPIRES)
    for sub in (1, 7, 2**63 - 1, 7):
        assert signer.sign(sub) == token(sub=sub)
        assert verify(KEY, signer.sign(sub), NOW).subscriber_id == sub
    with pytest.raises(ValueError):
        signer.sign(0)


def test_token_is_compact_and_safe_in_urls_and_json() -> None:
    value = token("shop.example_a-b", 2**63 - 1, 2**63 - 1, 2**63 - 1)
    assert len(value) <= MAX_TOKEN_CHARS
    assert all(c.isalnum() or c in "~-_." for c in value)
    assert verify(KEY, value, NOW).partner_id == "shop.example_a-b"
    assert len(token()) < 100


def test_lifetime_is_thirty_days() -> None:
    assert EVENT_TOKEN_LIFETIME == 30 * 24 * 3600


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("~100000001~", "~100000002~"),
        ("~42~", "~43~"),
        ("~7~", "~8~"),
        (f"~{EXPIRES}~", f"~{EXPIRES + 1}~"),
    ],
)
def test_changing_any_field_breaks_the_signature(old: str, new: str) -> None:
    value = token()
    assert old in value
    assert refused(value.replace(old, new, 1)) == "invalid signature"


def test_changing_the_signature_breaks_it() -> None:
    value = token()
    head, _, signature = value.rpartition("~")
    for i in (0, 20, 41):
        changed = signature[:i] + ("A" if signature[i] != "A" else "B") + signature[i + 1 :]
        assert refused(f"{head}~{changed}") in ("invalid signature", "malformed event token")


def test_wrong_key_is_refused() -> None:
    assert refused(token(), key=bytes(32)) == "invalid signature"


def test_expired_is_refused() -> None:
    assert refused(token(exp=NOW)) == "expired"
    assert refused(token(exp=NOW - 1)) == "expired"
    assert verify(KEY, token(exp=NOW + 1), NOW).expires_at == NOW + 1


def test_forged_expiry_is_a_bad_signature_not_a_longer_life() -> None:
    old = token(exp=NOW - 10)
    assert refused(old.replace(f"~{NOW - 10}~", f"~{EXPIRES}~")) == "invalid signature"


def test_other_spellings_of_the_same_claim_are_malformed() -> None:
    value = token()
    head, _, signature = value.rpartition("~")
    assert refused(value.replace("~42~", "~042~")) == "malformed event token"
    assert refused(value.replace("~7~", "~+7~")) == "malformed event token"
    assert refused(f"{head}~{signature}=") == "malformed event token"
    assert refused(value.replace("pc1~", "PC1~")) == "malformed event token"


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "pc1",
        "junk",
        "pc1~100000001~42~7",
        "pc1~100000001~42~7~1~2~3",
        "pc1~~42~7~1~" + "A" * 43,
        "pc1~100000001~0~7~1~" + "A" * 43,
        "pc1~100000001~-1~7~1~" + "A" * 43,
        "pc1~100000001~42~7~99999999999999999999~" + "A" * 43,
        "pc1~100000001~٤٢~7~1~" + "A" * 43,  # Arabic-Indic digits
        "pc1~1000\u00e9~42~7~1~" + "A" * 43,
        "pc1~100000001~42~7~1~" + "\U0001f600" * 43,
        "pc1~100000001~42~7~1~" + "!" * 43,
        "pc1~100000001~42~7~1~" + "A" * 44,
        "pc1~" + "a" * 65 + "~42~7~1~" + "A" * 43,
        "~" * 5,
        "x" * 100_000,
        "pc1~100000001~42~7~1~\x00" + "A" * 42,
    ],
)
def test_malformed_tokens_are_refused(junk: str) -> None:
    assert refused(junk) == "malformed event token"
    assert peek_partner(junk) is None


def test_sign_refuses_what_verify_could_not_read() -> None:
    for bad in (
        lambda: sign(b"", "p", 1, 1, 1),
        lambda: sign(KEY, "p~q", 1, 1, 1),
        lambda: sign(KEY, "p", 0, 1, 1),
        lambda: sign(KEY, "p", 1, 2**63, 1),
        lambda: sign(KEY, "p", 1, 1, -1),
    ):
        with pytest.raises(ValueError):
            bad()
