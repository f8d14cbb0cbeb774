"""Richer notifications (pushcamp's extensions to the launch body, docs/delivery.md):
``actions``, ``badge``, ``require_interaction``, ``renotify``, ``silent``. Validated in
the domain's style (every offending field named at once, nothing coerced), carried in the
payload only when given, counted by the size check, and stored and read back."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest

from pushcamp.domain import launches
from pushcamp.domain.launch_codec import request_from_dict, request_to_dict
from pushcamp.domain.launches import (
    ACTION_TITLE_MAX_CHARS,
    MAX_TOKEN_CHARS,
    LaunchRequest,
    NotificationAction,
    build_payload,
    check_payload,
    parse_launch,
    payload_problem,
)
from pushcamp.errors import InvalidRequest
from pushcamp.webpush import MAX_PAYLOAD_SIZE

EVENTS_URL = "https://push.example.com/v1/events"
TWO_ACTIONS = [
    {"title": "Shop now", "link": "https://shop.example.com/sale"},
    {"title": "Later", "link": "http://shop.example.com/remind"},
]


def body(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "partner_id": "100000001",
        "title": "Summer sale",
        "description": "Everything half price until Sunday",
        "image": "https://cdn.example.com/icon.png",
        "link": "https://shop.example.com/sale",
        "ttl": 3600,
    }
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def request(**changes: Any) -> LaunchRequest:
    return parse_launch(body(**changes), is_all=True)


def refused(**changes: Any) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as exc:
        parse_launch(body(**changes), is_all=True)
    return {e.field: e.reason for e in exc.value.errors}


def raw_payload(req: LaunchRequest, tag: str = "pc-l1") -> bytes:
    return build_payload(req, default_icon=None, token="tok.en", events_url=EVENTS_URL, tag=tag)


# --- a body without them ------------------------------------------------------------------


def test_a_body_without_the_extensions_gives_exactly_the_payload_it_always_gave() -> None:
    """The bytes are pinned: adding the extensions changed nothing for such a launch."""
    req = request(banner="https://cdn.example.com/b.jpg", description="Short")
    assert raw_payload(req) == (
        b'{"title":"Summer sale","body":"Short","icon":"https://cdn.example.com/icon.png",'
        b'"image":"https://cdn.example.com/b.jpg","url":"https://shop.example.com/sale",'
        b'"token":"tok.en","events_url":"https://push.example.com/v1/events","tag":"pc-l1"}'
    )
    assert (req.actions, req.badge) == ((), None)
    assert (req.require_interaction, req.renotify, req.silent) == (False, False, False)


@pytest.mark.parametrize(
    "title",
    ['Quote " and backslash \\', "Line\nbreak\ttab \u2028", "Ünïcödé 🎉 – 50 %", "\x7f\x1f"],
)
def test_payload_is_the_compact_json_of_its_fields(title: str) -> None:
    """Built from per-launch parts around the token: still exactly what the standard
    library's json writes for the whole object, the token included as given."""
    req = request(title=title, actions=TWO_ACTIONS, badge="https://cdn.example.com/b.png")
    token = "pc1~100000001~42~7~1800000000~" + "A-_z" * 10 + "xyz"
    payload = build_payload(
        req, default_icon=None, token=token, events_url=EVENTS_URL, tag="pc-l1", title=title
    )
    fields = json.loads(payload)
    assert (fields["title"], fields["token"], fields["tag"]) == (title, token, "pc-l1")
    assert list(fields)[-3:] == ["token", "events_url", "tag"]
    assert payload == json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("token", ['a"b', "a\\b", "é", "a\nb"])
def test_a_token_json_would_escape_is_refused(token: str) -> None:
    with pytest.raises(ValueError):
        build_payload(request(), default_icon=None, token=token, events_url=EVENTS_URL, tag="t")


@pytest.mark.parametrize(
    "changes",
    [
        {"actions": []},
        {"actions": None, "badge": None, "silent": None},
        {"require_interaction": False, "renotify": False, "silent": False},
    ],
    ids=["no-actions", "nulls", "all-false"],
)
def test_empty_null_and_false_extensions_change_nothing(changes: dict[str, Any]) -> None:
    assert raw_payload(request(**changes)) == raw_payload(request())


# --- parsing ------------------------------------------------------------------------------


def test_the_extensions_are_parsed() -> None:
    req = request(
        actions=TWO_ACTIONS,
        badge="https://cdn.example.com/badge.png",
        require_interaction=True,
        renotify=True,
        silent=True,
    )
    assert req.actions == (
        NotificationAction("Shop now", "https://shop.example.com/sale"),
        NotificationAction("Later", "http://shop.example.com/remind"),
    )
    assert req.badge == "https://cdn.example.com/badge.png"
    assert (req.require_interaction, req.renotify, req.silent) == (True, True, True)


def test_one_action_is_fine() -> None:
    assert request(actions=TWO_ACTIONS[:1]).actions == (
        NotificationAction("Shop now", "https://shop.example.com/sale"),
    )


def test_every_offending_field_is_named_at_once() -> None:
    errors = refused(
        title="",
        actions=[
            {"title": " ", "link": "https://ok.example/"},
            {"title": "Go", "link": "javascript:alert(1)"},
        ],
        badge="http://cdn.example.com/badge.png",
        require_interaction="true",
        renotify=1,
        silent="false",
    )
    assert set(errors) == {
        "title",
        "actions[0].title",
        "actions[1].link",
        "badge",
        "require_interaction",
        "renotify",
        "silent",
    }
    assert errors["require_interaction"] == "must be a boolean"
    assert errors["badge"] == "must be an https URL"


@pytest.mark.parametrize(
    "actions",
    ["Shop now", {"title": "Shop now", "link": "https://a.example/"}, 2, True],
)
def test_actions_must_be_a_list(actions: object) -> None:
    assert set(refused(actions=actions)) == {"actions"}


def test_at_most_two_actions() -> None:
    third = {"title": "Never", "link": "https://a.example/"}
    assert refused(actions=[*TWO_ACTIONS, third]) == {"actions": "at most 2 actions"}


@pytest.mark.parametrize("item", ["Shop now", ["Shop now", "https://a.example/"], None, 1])
def test_each_action_must_be_an_object(item: object) -> None:
    assert set(refused(actions=[TWO_ACTIONS[0], item])) == {"actions[1]"}


def test_an_action_needs_a_title_and_a_link() -> None:
    assert refused(actions=[{}]) == {
        "actions[0].title": "is required",
        "actions[0].link": "is required",
    }
    assert set(refused(actions=[{"title": None, "link": None}])) == {
        "actions[0].title",
        "actions[0].link",
    }


def test_action_titles_are_1_to_40_characters_counted_in_code_points() -> None:
    assert request(actions=[{"title": "😀" * 40, "link": "https://a.example/"}]).actions
    assert set(
        refused(actions=[{"title": "x" * (ACTION_TITLE_MAX_CHARS + 1), "link": "https://a/"}])
    ) == {"actions[0].title"}
    # "e" + a combining accent is one character once NFC-normalised, as titles are.
    decomposed = unicodedata.normalize("NFD", "é") * 40
    (action,) = request(actions=[{"title": decomposed, "link": "https://a.example/"}]).actions
    assert action.title == "é" * 40


@pytest.mark.parametrize("title", ["", "   ", 5, True, ["Go"], "a\x00b", "\ud800"])
def test_bad_action_titles(title: object) -> None:
    assert set(refused(actions=[{"title": title, "link": "https://a.example/"}])) == {
        "actions[0].title"
    }


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://shop.example.com/",
        "/relative",
        "https://user:pw@shop.example.com/",
        "https://shop example.com/",
        "https://shop.example.com/" + "a" * launches.URL_MAX_CHARS,
        7,
    ],
)
def test_action_links_follow_the_rules_of_link(link: object) -> None:
    assert set(refused(actions=[{"title": "Go", "link": link}])) == {"actions[0].link"}


@pytest.mark.parametrize("badge", ["http://cdn.example.com/b.png", "data:image/png;base64,", 1])
def test_badge_is_an_https_url_like_image(badge: object) -> None:
    assert set(refused(badge=badge)) == {"badge"}


@pytest.mark.parametrize("name", ["require_interaction", "renotify", "silent"])
@pytest.mark.parametrize("value", ["true", "false", 1, 0, "yes", [], {}])
def test_flags_are_booleans_never_coerced(name: str, value: object) -> None:
    assert refused(**{name: value}) == {name: "must be a boolean"}


# --- the payload --------------------------------------------------------------------------


def test_the_payload_carries_them_in_the_documented_order() -> None:
    req = request(
        actions=TWO_ACTIONS,
        badge="https://cdn.example.com/badge.png",
        require_interaction=True,
        renotify=True,
        silent=True,
    )
    raw = raw_payload(req)
    shown = json.loads(raw)
    assert raw == json.dumps(shown, ensure_ascii=False, separators=(",", ":")).encode()
    assert list(shown) == [
        "title",
        "body",
        "icon",
        "badge",
        "url",
        "actions",
        "require_interaction",
        "renotify",
        "silent",
        "token",
        "events_url",
        "tag",
    ]
    assert shown["actions"] == [
        {"title": "Shop now", "url": "https://shop.example.com/sale"},
        {"title": "Later", "url": "http://shop.example.com/remind"},
    ]
    assert shown["badge"] == "https://cdn.example.com/badge.png"
    assert shown["require_interaction"] is shown["renotify"] is shown["silent"] is True


def test_renotify_always_has_the_tag_the_browser_requires() -> None:
    """showNotification throws a TypeError for renotify without a tag: the payload's tag is
    the launch's Topic, never left out, and the worker passes it on."""
    shown = json.loads(raw_payload(request(renotify=True), tag="pc-l2s"))
    assert shown["renotify"] is True and shown["tag"] == "pc-l2s"
    with pytest.raises(ValueError):
        build_payload(
            request(renotify=True),
            default_icon=None,
            token="t",
            events_url=EVENTS_URL,
            tag="g" * (launches.MAX_TAG_CHARS + 1),
        )


def _two_long_actions(n: int) -> list[dict[str, str]]:
    return [
        {"title": "😀" * ACTION_TITLE_MAX_CHARS, "link": "https://a.example/" + "a" * 600},
        {
            "title": "😀" * ACTION_TITLE_MAX_CHARS,
            "link": "https://b.example/" + "b" * n,
        },
    ]


def test_the_size_check_counts_two_long_actions_to_the_byte() -> None:
    """A launch with two long buttons: accepted up to MAX_PAYLOAD_SIZE with the worst-case
    token and tag, refused one byte later, the offending field named."""
    texts = {"title": "😀" * 100, "description": "😀" * 100, "image": ..., "link": "https://s.ex/"}
    base = request(actions=_two_long_actions(0), badge="https://cdn.example.com/b.png", **texts)
    worst = len(
        build_payload(
            base,
            default_icon=None,
            token="t" * MAX_TOKEN_CHARS,
            events_url=EVENTS_URL,
            tag="g" * launches.MAX_TAG_CHARS,
        )
    )
    room = MAX_PAYLOAD_SIZE - worst
    assert 600 < room < launches.URL_MAX_CHARS - 100
    badge = "https://cdn.example.com/b.png"
    fits = request(actions=_two_long_actions(room), badge=badge, **texts)
    over = request(actions=_two_long_actions(room + 1), badge=badge, **texts)
    assert payload_problem(fits, None, EVENTS_URL) is None
    check_payload(fits, None, EVENTS_URL)
    assert payload_problem(over, None, EVENTS_URL) is not None
    with pytest.raises(InvalidRequest) as exc:
        check_payload(over, None, EVENTS_URL)
    assert [e.field for e in exc.value.errors] == ["actions[1].link"]
    # Without its buttons the same launch is far from the limit: they were what counted.
    assert payload_problem(request(badge=badge, **texts), None, EVENTS_URL) is None


def test_the_flags_and_badge_count_too() -> None:
    image = "https://cdn.example.com/" + "i" * 1990
    texts = {"title": "😀" * 100, "description": "😀" * 255, "image": image}
    base = request(link="https://s.example/", **texts)
    room = MAX_PAYLOAD_SIZE - len(
        build_payload(
            base,
            default_icon=None,
            token="t" * MAX_TOKEN_CHARS,
            events_url=EVENTS_URL,
            tag="g" * launches.MAX_TAG_CHARS,
        )
    )
    link = "https://s.example/" + "a" * room  # exactly at the limit without them
    assert payload_problem(request(link=link, **texts), None, EVENTS_URL) is None
    for extra in ({"silent": True}, {"renotify": True}, {"require_interaction": True}):
        assert payload_problem(request(link=link, **texts, **extra), None, EVENTS_URL)
    badged = request(link=link[:-40], badge="https://cdn.example.com/" + "b" * 100, **texts)
    assert payload_problem(badged, None, EVENTS_URL) is not None
    with pytest.raises(InvalidRequest) as exc:
        check_payload(badged, None, EVENTS_URL)
    assert [e.field for e in exc.value.errors] == ["image"]


# --- stored and read back -----------------------------------------------------------------


def test_stored_and_read_back_through_json() -> None:
    req = request(
        actions=TWO_ACTIONS,
        badge="https://cdn.example.com/badge.png",
        require_interaction=True,
        silent=True,
        target={"attribute": "plan", "values": ["gold"]},
    )
    stored = json.loads(json.dumps(request_to_dict(req)))
    assert stored["actions"] == TWO_ACTIONS
    assert request_from_dict(stored) == req
    assert raw_payload(request_from_dict(stored)) == raw_payload(req)


def test_a_request_stored_before_the_extensions_reads_back_without_them() -> None:
    old = {
        "partner_id": "100000001",
        "title": "Summer sale",
        "description": "Short",
        "image": None,
        "banner": None,
        "link": "https://shop.example.com/sale",
        "ttl": 3600,
        "include_unengaged": False,
        "language": None,
        "target": None,
    }
    req = request_from_dict(old)
    assert (req.actions, req.badge, req.require_interaction, req.renotify, req.silent) == (
        (),
        None,
        False,
        False,
        False,
    )
    assert raw_payload(req) == raw_payload(request(description="Short", image=...))
