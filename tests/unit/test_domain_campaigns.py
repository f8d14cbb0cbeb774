"""A new campaign's fields follow §2.1: titles of 1-100 characters (not bytes), real
locale codes, text every backend can store."""

import pytest

from pushcamp.domain.campaigns import new_campaign
from pushcamp.domain.locales import is_locale
from pushcamp.errors import InvalidRequest


def fields(exc: pytest.ExceptionInfo[InvalidRequest]) -> set[str]:
    return {e.field for e in exc.value.errors}


def test_hundred_emoji_is_a_valid_title() -> None:
    assert new_campaign("😀" * 100, "en_US").title == "😀" * 100


def test_hundred_ascii_is_valid_and_101_is_not() -> None:
    assert new_campaign("a" * 100, "en_US").title == "a" * 100
    with pytest.raises(InvalidRequest) as exc:
        new_campaign("a" * 101, "en_US")
    assert fields(exc) == {"title"}


def test_length_is_counted_after_nfc_normalisation() -> None:
    decomposed = "e\u0301" * 100  # 200 code points, 100 characters once composed
    assert new_campaign(decomposed, "en_US").title == "\u00e9" * 100


@pytest.mark.parametrize("title", ["", "   ", "bad\x00title", "lone \ud800 surrogate"])
def test_unstorable_or_blank_titles_are_refused(title: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        new_campaign(title, "en_US")
    assert fields(exc) == {"title"}


def test_every_offending_field_is_named_at_once() -> None:
    with pytest.raises(InvalidRequest) as exc:
        new_campaign("x" * 101, "english")
    assert fields(exc) == {"title", "language"}


@pytest.mark.parametrize("code", ["en_US", "en_GB", "tr_TR", "de_AT", "all_ALL"])
def test_locale_codes_accepted(code: str) -> None:
    assert is_locale(code)


@pytest.mark.parametrize(
    "code", ["en-US", "en_us", "EN_US", "xx_US", "en_XX", "en", "all_all", "", "en_US ", "eng_USA"]
)
def test_locale_codes_refused(code: str) -> None:
    assert not is_locale(code)
