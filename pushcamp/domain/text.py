"""Rules for user-supplied text that every layer below must be able to store."""

from __future__ import annotations

import unicodedata


def normalise(value: str) -> str:
    """NFC-normalise so that a title typed with combining marks counts (and compares) the
    same as its precomposed form."""
    return unicodedata.normalize("NFC", value)


def storage_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None.

    PostgreSQL refuses NUL characters and no UTF-8 encoder accepts a lone surrogate (JSON
    allows ``"\\ud800"``); both would fail deep in the driver, so they are refused here.
    """
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None
