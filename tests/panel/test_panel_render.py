"""The panel's number formats (pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pushcamp.panel.render import language, number, percent


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (411840, "411,840"),
        (0, "0"),
        (Decimal("1040.6000"), "1,040.60"),  # revenue as the statistics services sum it
        (Decimal("0"), "0.00"),
        (2.5, "2.50"),
        (None, "–"),
        (True, "–"),
    ],
)
def test_numbers(value: object, shown: str) -> None:
    assert number(value) == shown


def test_rates_and_languages() -> None:
    assert percent(0.3408) == "34.08%"
    assert percent(None) == "–"
    assert language("all_ALL") == "all languages"
    assert language("de_DE") == "de_DE"
