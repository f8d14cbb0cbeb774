"""Key decoding: unpadded base64url, as browsers send keys and pushcamp stores them, is
decoded without the general case's clean-up; every spelling the general case accepts
(padding, the standard alphabet, surrounding blanks) still gives the same bytes, and
text that is not base64 is still refused. The bytes are checked against the standard
library's own encoder, not against pushcamp's."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushcamp.webpush._base64 import b64url_decode


def _stdlib_unpadded(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


@given(data=st.binary(max_size=80))
def test_unpadded_base64url_decodes_to_the_bytes(data: bytes) -> None:
    assert b64url_decode(_stdlib_unpadded(data)) == data


@given(data=st.binary(max_size=80))
def test_every_accepted_spelling_gives_the_same_bytes(data: bytes) -> None:
    padded = base64.urlsafe_b64encode(data).decode("ascii")
    standard = base64.b64encode(data).decode("ascii")
    for spelling in (padded, standard, standard.rstrip("="), f" {padded}\n"):
        assert b64url_decode(spelling) == data


@given(text=st.text(st.sampled_from(list("AQZaz09-_+/= \t\n.!é")), max_size=30))
def test_any_text_decodes_as_the_cleaned_text_does_or_is_refused(text: str) -> None:
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        expected: bytes | None = base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        expected = None
    if expected is None:
        with pytest.raises(ValueError):
            b64url_decode(text)
    else:
        assert b64url_decode(text) == expected


@pytest.mark.parametrize("text", ["A", "AAAAA", "QUJDR"])
def test_a_length_base64_cannot_have_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)
