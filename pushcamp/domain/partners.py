"""Partners (tenants): identifiers and rate-limit budgets (contract §1)."""

from __future__ import annotations

import re

from pushcamp.errors import InvalidRequest

PARTNER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_LIMIT_PER_MINUTE = 10_000_000


def check_partner_id(partner_id: str) -> str:
    """A partner id is chosen at creation: 1-64 of letters, digits, ``_ . -``."""
    if not PARTNER_ID_PATTERN.fullmatch(partner_id):
        raise InvalidRequest.of(
            "partner_id", "must be 1-64 letters, digits, '_', '.' or '-', starting alphanumeric"
        )
    return partner_id


def check_limit(name: str, value: int) -> int:
    if not 1 <= value <= MAX_LIMIT_PER_MINUTE:
        raise InvalidRequest.of(name, f"must be between 1 and {MAX_LIMIT_PER_MINUTE} per minute")
    return value
