"""Unpadded base64url, the encoding of Web Push keys and of pushcamp's event tokens.

A module of its own so that the domain rules can use it without importing the protocol
library (``pushcamp.webpush`` has its own copy: it depends on nothing of pushcamp).
"""

from __future__ import annotations

import base64
import binascii


def b64url_encode(data: bytes) -> str:
    """Encode as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    """Decode base64url with or without padding; also accepts the standard alphabet
    (some browsers' older ``getKey()`` wrappers and key files use it).

    Raises ``ValueError`` on anything else.
    """
    text = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
