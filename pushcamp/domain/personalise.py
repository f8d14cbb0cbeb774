"""Per-subscriber content of a launch (pushcamp extensions, docs/delivery.md): the
``{{attribute}}`` placeholders of a title or description, the per-language ``variants``
and the A/B split.

Pure: no database, no clock. The renderer is a regular expression, not a template
engine: a placeholder is replaced by the subscriber's attribute as plain text (or its
default), nothing in a launch's text or a subscriber's attribute is ever evaluated, and
no HTML is produced or interpreted (a notification's title and body are plain text).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence

from pushcamp.domain.subscribers import ATTRIBUTE_VALUE_MAX_CHARS

__all__ = [
    "DEFAULT_MAX_CHARS",
    "WINNER_MIN_DELIVERED",
    "ab_winner",
    "LONGEST_VALUE",
    "PLACEHOLDER",
    "ab_bucket",
    "ab_variant",
    "placeholders",
    "render",
    "variant_label",
    "worst_case",
]

# ``{{ name }}`` or ``{{ name|default }}``: the name follows the attribute-name rule of
# domain/subscribers.py (ATTRIBUTE_NAME), the default is any text without braces, a bar or
# a line break, at most DEFAULT_MAX_CHARS characters (spaces around both are ignored).
# Anything else between ``{{`` and ``}}`` is not a placeholder and stays as written.
DEFAULT_MAX_CHARS = 100
PLACEHOLDER = re.compile(
    r"\{\{[ \t]*([A-Za-z][A-Za-z0-9_.\-]{0,63})[ \t]*"
    r"(?:\|[ \t]*([^{}|\r\n]{0," + str(DEFAULT_MAX_CHARS) + r"}?)[ \t]*)?\}\}"
)

# Control characters (C0, DEL, C1) are taken out of an inserted value: they show as
# nothing useful in a notification and would take six bytes each in the JSON payload.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# The value measured in place of every placeholder when a launch's payload size is
# checked: the longest attribute value a subscriber can have (200 characters), each of
# the largest size one character can take in the payload (4 bytes of UTF-8; a quote or a
# backslash is 2 bytes escaped, and control characters are removed). A default is at most
# DEFAULT_MAX_CHARS characters, so never longer.
LONGEST_VALUE = "\U00010000" * ATTRIBUTE_VALUE_MAX_CHARS


def placeholders(template: str) -> list[tuple[str, str | None]]:
    """The ``(name, default)`` of every placeholder in ``template``, in order."""
    return [(m.group(1), m.group(2)) for m in PLACEHOLDER.finditer(template)]


def render(template: str, attributes: Mapping[str, object]) -> str:
    """``template`` with each placeholder replaced by the subscriber's attribute as plain
    text; an attribute the subscriber lacks (or has empty) gives the default, or ``""``
    without one. Text that is not a placeholder is returned unchanged."""
    if "{{" not in template:
        return template

    def value(match: re.Match[str]) -> str:
        raw = attributes.get(match.group(1))
        text = _CONTROL.sub("", raw if isinstance(raw, str) else "" if raw is None else str(raw))
        text = text[:ATTRIBUTE_VALUE_MAX_CHARS]
        if text.strip():
            return text
        return match.group(2) or ""

    return PLACEHOLDER.sub(value, template)


def worst_case(template: str) -> str:
    """``template`` with every placeholder replaced by :data:`LONGEST_VALUE`: the
    largest text it can render to, for the payload size check."""
    if "{{" not in template:
        return template
    return PLACEHOLDER.sub(lambda _m: LONGEST_VALUE, template)


def ab_bucket(launch_id: int, subscriber_id: int) -> int:
    """A number from 0 to 99 fixed for (launch, subscriber): the first 8 bytes of
    SHA-256 of ``"launch:subscriber"``, mod 100. The same on every worker and after any
    restart, so a resumed launch gives each subscriber the variant it gave before, and
    a subscriber's event can be attributed to its variant without carrying it."""
    digest = hashlib.sha256(f"{launch_id}:{subscriber_id}".encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") % 100


def ab_variant(splits: Sequence[int], launch_id: int, subscriber_id: int) -> int | None:
    """The index of the A/B variant of this subscriber: variant ``i`` takes the buckets
    from the sum of the splits before it, ``splits[i]`` of them. None without a split."""
    if not splits:
        return None
    bucket = ab_bucket(launch_id, subscriber_id)
    upper = 0
    for index, share in enumerate(splits):
        upper += share
        if bucket < upper:
            return index
    return len(splits) - 1


def variant_label(index: int) -> str:
    """``A``, ``B``, ``C``, ``D``: how a variant is named in statistics and the panel."""
    return chr(ord("A") + index)


# An A/B test's winner is named only once every arm has had this many notifications
# delivered: below that, one click more or less swings a click-through rate by a point
# or more, and the first arm to get lucky would be called the winner.
WINNER_MIN_DELIVERED = 100


def ab_winner(
    arms: Sequence[tuple[int, int]], min_delivered: int = WINNER_MIN_DELIVERED
) -> int | None:
    """The index of the winning arm, from each arm's ``(delivered, clicks)``: the highest
    click-through rate (clicks / delivered), once every arm has at least
    ``min_delivered`` delivered. None before that, with fewer than two arms, or when two
    arms share the highest rate (compared exactly, as fractions)."""
    if len(arms) < 2 or any(delivered < min_delivered for delivered, _ in arms):
        return None
    best: list[int] = []
    for index, (delivered, clicks) in enumerate(arms):
        if not best:
            best = [index]
            continue
        top_delivered, top_clicks = arms[best[0]]
        # clicks / delivered compared without division.
        left, right = clicks * top_delivered, top_clicks * delivered
        if left > right:
            best = [index]
        elif left == right:
            best.append(index)
    return best[0] if len(best) == 1 else None
