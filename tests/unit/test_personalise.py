"""The placeholder renderer, the A/B assignment and the winner rule (domain/personalise.py)."""

from __future__ import annotations

import json
from collections import Counter

from pushcamp.domain import personalise as p


def test_placeholders_are_filled_as_plain_text_with_defaults() -> None:
    attrs = {"first_name": "Ayşe", "blank": "  ", "html": "<script>{{first_name}}</script>"}
    assert p.render("Hi {{ first_name | there }}!", attrs) == "Hi Ayşe!"
    assert p.render("Hi {{missing|there}} {{missing}}.", attrs) == "Hi there ."
    assert p.render("{{blank|fallback}}", attrs) == "fallback"
    # A value is never rendered again, nor escaped: it is text.
    assert p.render("{{html}}", attrs) == "<script>{{first_name}}</script>"
    # What is not a placeholder stays as written: no expressions, no attribute access.
    for literal in ("{{ 1+1 }}", "{{__class__}}", "{{a.b()}}", "{{ x | a | b }}", "{{x"):
        assert p.render(literal, attrs) == literal
    assert p.render("{{c}}", {"c": "a\x01b\x9fc"}) == "abc"


def test_worst_case_is_at_least_as_large_as_any_rendering() -> None:
    template = "Hi {{first_name|there}}"
    worst = len(json.dumps(p.worst_case(template), ensure_ascii=False).encode())
    for value in ("x" * 200, "\U0001f600" * 200, '"' * 200, "\\" * 200, "\x01" * 200):
        rendered = p.render(template, {"first_name": value})
        assert len(json.dumps(rendered, ensure_ascii=False).encode()) <= worst


def test_ab_assignment_is_fixed_and_follows_the_split() -> None:
    splits = [20, 30, 50]
    first = [p.ab_variant(splits, 42, sid) for sid in range(20_000)]
    assert first == [p.ab_variant(splits, 42, sid) for sid in range(20_000)]
    counts = Counter(first)
    for index, share in enumerate(splits):
        assert abs(counts[index] / 20_000 - share / 100) < 0.02, counts
    assert p.ab_variant([], 1, 1) is None


def test_winner_needs_enough_delivered_and_a_clear_lead() -> None:
    assert p.ab_winner([(100, 20), (100, 10)]) == 0
    assert p.ab_winner([(200, 20), (100, 11)]) == 1
    assert p.ab_winner([(99, 50), (100, 10)]) is None  # one arm too small
    assert p.ab_winner([(100, 10), (200, 20)]) is None  # a tie
    assert p.ab_winner([(100, 10)]) is None
