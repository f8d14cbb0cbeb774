"""Locale codes of the contract: ``ll_CC`` (ISO 639-1 language, ISO 3166-1 alpha-2 region)
or ``all_ALL`` (every subscriber whatever their language).

The code lists come from ``pycountry`` (the ISO tables, kept up to date by its
maintainers) rather than a list typed in here.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pycountry

ALL_LANGUAGES = "all_ALL"
_SHAPE = re.compile(r"[a-z]{2}_[A-Z]{2}")


@lru_cache(maxsize=1)
def _iso_tables() -> tuple[frozenset[str], frozenset[str]]:
    languages = frozenset(
        lang.alpha_2 for lang in pycountry.languages if getattr(lang, "alpha_2", None)
    )
    regions = frozenset(country.alpha_2 for country in pycountry.countries)
    return languages, regions


def is_locale(code: str) -> bool:
    """True for ``all_ALL`` and for ``ll_CC`` where both halves are assigned ISO codes."""
    if code == ALL_LANGUAGES:
        return True
    if not _SHAPE.fullmatch(code):
        return False
    languages, regions = _iso_tables()
    language, region = code.split("_")
    return language in languages and region in regions
