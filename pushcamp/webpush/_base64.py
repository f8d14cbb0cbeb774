"""Unpadded base64url, the encoding every Web Push key and token uses."""

from __future__ import annotations

import base64
import binascii
import re

# Text as pushcamp stores and browsers send it (unpadded base64url, nothing to clean up):
# decoded as it is, without the copies the general case makes (a subscriber's two keys
# are decoded for every push).
_CANONICAL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Encode as unpadded base64url (keys, tokens, ``applicationServerKey``)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    """Decode base64url with or without padding; also accepts the standard alphabet,
    which some browsers' older ``getKey()`` wrappers and key files use.

    Raises ``ValueError`` on anything else.
    """
    if len(value) % 4 != 1 and _CANONICAL.fullmatch(value):
        return base64.urlsafe_b64decode(value + "==="[: -len(value) % 4])
    text = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
