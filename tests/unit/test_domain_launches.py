"""A launch follows §2.2 and §4: every offending field named at once, no coercion but the
documented ones, a payload that fits one Web Push message whatever token it carries, and
audience rules (engagement, silent hours, frequency cap) that hold at their boundaries."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pushcamp.domain import launches
from pushcamp.domain.launches import (
    MAX_TOKEN_CHARS,
    PAUSE_MIN_ATTEMPTS,
    TERMINAL,
    DeliveryState,
    DropReason,
    LaunchRequest,
    LaunchStatus,
    Target,
    audience_language,
    build_payload,
    check_payload,
    counts_towards_pause,
    engaged,
    engagement_cutoff,
    fingerprint,
    frequency_capped,
    in_silent_hours,
    local_minutes,
    parse_launch,
    payload_problem,
    should_pause,
    topic_for,
)
from pushcamp.errors import InvalidRequest
from pushcamp.webpush import MAX_PAYLOAD_SIZE

COLLECTION = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "reference"
    / "insider-web-push.postman_collection.json"
)
EVENTS_URL = "https://push.example.com/v1/events"


def body(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "partner_id": "100000001",
        "title": "Summer sale",
        "description": "Everything half price until Sunday",
        "image": "https://cdn.example.com/icon.png",
        "link": "https://shop.example.com/sale",
        "ttl": 3600,
        "target": {"attribute": "d_wp_browser", "values": ["Chrome", "Firefox"]},
    }
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def refused(data: dict[str, Any], *, is_all: bool = False) -> set[str]:
    with pytest.raises(InvalidRequest) as exc:
        parse_launch(data, is_all=is_all)
    assert exc.value.errors, "a refusal must name its fields"
    return {e.field for e in exc.value.errors}


def request(**changes: Any) -> LaunchRequest:
    return parse_launch(body(**changes), is_all=False)


# --- the published collection ----------------------------------------------------------


def _collection_launch_bodies() -> list[dict[str, Any]]:
    if not COLLECTION.exists():
        pytest.skip("the published collection is not next to the repository")
    found: list[dict[str, Any]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "item" in item:
                walk(item["item"])
                continue
            req = item["request"]
            path = req["url"]["path"] if isinstance(req["url"], dict) else []
            if req["method"] == "POST" and path[1:2] == ["single"] and len(path) == 3:
                found.append(json.loads(req["body"]["raw"]))

    walk(json.loads(COLLECTION.read_text(encoding="utf-8"))["item"])
    assert len(found) == 2, "expected the v1 and v2 launch samples"
    return found


def test_published_launch_bodies_are_valid_for_an_is_all_campaign() -> None:
    for sample in _collection_launch_bodies():
        req = parse_launch(sample, is_all=True)
        assert req.ttl == 1000
        assert req.include_unengaged is True  # sent as the misspelt include_unengage
        assert req.banner is not None and req.image is not None
        assert req.target is None
        check_payload(req, None, EVENTS_URL)  # fits: no error


def test_published_launch_bodies_lack_only_the_target_for_a_segment_campaign() -> None:
    for sample in _collection_launch_bodies():
        assert refused(sample, is_all=False) == {"target"}


# --- a valid request --------------------------------------------------------------------


def test_a_full_request_is_parsed() -> None:
    req = parse_launch(
        body(banner="https://cdn.example.com/b.jpg", description="Short", language="tr_TR"),
        is_all=False,
    )
    assert req == LaunchRequest(
        partner_id="100000001",
        title="Summer sale",
        description="Short",
        image="https://cdn.example.com/icon.png",
        banner="https://cdn.example.com/b.jpg",
        link="https://shop.example.com/sale",
        ttl=3600,
        include_unengaged=False,
        language="tr_TR",
        target=Target("d_wp_browser", ("Chrome", "Firefox")),
    )


def test_optional_fields_default() -> None:
    req = parse_launch(body(image=..., target=...), is_all=True)
    assert (req.image, req.banner, req.language, req.target) == (None, None, None, None)
    assert req.include_unengaged is False


def test_null_optional_fields_count_as_absent() -> None:
    req = parse_launch(
        body(image=None, banner=None, language=None, target=None, include_unengaged=None),
        is_all=True,
    )
    assert (req.image, req.banner, req.language, req.target) == (None, None, None, None)


def test_unknown_fields_are_ignored() -> None:
    assert request(campaign_name="x", extra={"a": [1]}).title == "Summer sale"


def test_every_offending_field_is_named_at_once() -> None:
    data = {
        "partner_id": 100000001,
        "title": "",
        "description": 5,
        "image": "http://cdn.example.com/i.png",
        "banner": "ftp://x",
        "link": "javascript:alert(1)",
        "ttl": -1,
        "include_unengaged": "true",
        "language": "english",
        "target": {"attribute": "", "values": []},
    }
    assert refused(data) == {
        "partner_id",
        "title",
        "description",
        "image",
        "banner",
        "link",
        "ttl",
        "include_unengaged",
        "language",
        "target.attribute",
        "target.values",
    }


def test_an_empty_body_names_every_required_field() -> None:
    assert refused({}) == {"partner_id", "title", "description", "link", "ttl", "target"}
    assert refused({}, is_all=True) == {"partner_id", "title", "description", "link", "ttl"}


# --- partner_id and title ---------------------------------------------------------------


@pytest.mark.parametrize("value", [100000001, None, ["1"], True])
def test_partner_id_must_be_a_string(value: object) -> None:
    assert refused(body(partner_id=value)) == {"partner_id"}


def test_partner_id_is_kept_verbatim() -> None:
    decomposed = "e\u0301"  # NFC would rewrite it; the token comparison must see it as sent
    assert request(partner_id=decomposed).partner_id == decomposed


def test_title_of_100_emoji_is_fine_and_101_characters_is_not() -> None:
    assert request(title="😀" * 100).title == "😀" * 100
    assert refused(body(title="a" * 101)) == {"title"}


def test_title_is_nfc_normalised_before_counting() -> None:
    assert request(title="e\u0301" * 100).title == "\u00e9" * 100


@pytest.mark.parametrize("title", ["", "   ", "a\x00b", "lone \ud800", 7, None])
def test_bad_titles(title: object) -> None:
    assert refused(body(title=title)) == {"title"}


# --- description ------------------------------------------------------------------------


def test_description_up_to_255_characters() -> None:
    assert len(request(description="d" * 255).description) == 255
    assert refused(body(description="d" * 256)) == {"description"}


def test_description_up_to_30_characters_with_a_banner() -> None:
    banner = "https://cdn.example.com/banner.jpg"
    assert request(description="d" * 30, banner=banner).description == "d" * 30
    with pytest.raises(InvalidRequest) as exc:
        parse_launch(body(description="d" * 31, banner=banner), is_all=False)
    assert [e.field for e in exc.value.errors] == ["description"]
    assert "banner" in exc.value.errors[0].reason


def test_description_counts_characters_not_bytes() -> None:
    assert request(description="😀" * 255).description == "😀" * 255


def test_a_null_banner_does_not_shorten_the_description() -> None:
    assert len(request(description="d" * 200, banner=None).description) == 200


@pytest.mark.parametrize("description", ["", "  ", None, 1, "a\x00"])
def test_bad_descriptions(description: object) -> None:
    assert refused(body(description=description)) == {"description"}


def test_description_may_span_lines() -> None:
    assert request(description="line one\nline two").description == "line one\nline two"


# --- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/i.png",
        "HTTPS://CDN.EXAMPLE.COM/i.png",
        "https://cdn.example.com:8443/i.png?v=2#x",
        "https://bücher.example/i.png",
        "https://[2001:db8::1]/i.png",
        "https://192.0.2.1/i.png",
        "https://cdn.example.com./i.png",
    ],
)
def test_image_and_banner_accept_https_urls(url: str) -> None:
    req = request(image=url, banner=url, description="short")
    assert (req.image, req.banner) == (url, url)


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.example.com/i.png",
        "//cdn.example.com/i.png",
        "/i.png",
        "cdn.example.com/i.png",
        "data:image/png;base64,AAAA",
        "javascript:alert(1)",
        "https://",
        "https:///i.png",
        "https://user:pw@cdn.example.com/i.png",
        "https://cdn example.com/i.png",
        "https://cdn.example.com/i.png\n",
        "https://cdn.example.com:99999/i.png",
        "https://-bad-.example.com/",
        "https://exa_mple.com/",
        "https://" + "a" * 64 + ".com/",
        "https://[::1/",
        "https://cdn.example.com/" + "a" * 2048,
        "",
        42,
        ["https://cdn.example.com/i.png"],
    ],
)
def test_image_and_banner_refuse_anything_else(url: object) -> None:
    assert refused(body(image=url, banner=url, description="short")) == {"image", "banner"}


def test_url_length_limit_is_inclusive() -> None:
    base = "https://cdn.example.com/"
    url = base + "a" * (launches.URL_MAX_CHARS - len(base))
    assert request(image=url).image == url


@pytest.mark.parametrize(
    "link", ["https://shop.example.com/", "http://shop.example.com/x?utm=1", "http://localhost/"]
)
def test_link_accepts_http_and_https(link: str) -> None:
    assert request(link=link).link == link


@pytest.mark.parametrize(
    "link", ["ftp://shop.example.com/", "mailto:a@b.c", "shop.example.com", "", None, 1]
)
def test_link_refuses_other_urls(link: object) -> None:
    assert refused(body(link=link)) == {"link"}


def test_link_is_required() -> None:
    assert refused(body(link=...)) == {"link"}


# --- ttl --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0), (1000, 1000), (864000, 864000), ("0", 0), ("1000", 1000), ("864000", 864000)],
)
def test_ttl_is_an_integer_or_a_string_of_digits(value: object, expected: int) -> None:
    assert request(ttl=value).ttl == expected


def test_ttl_leading_zeros_are_harmless() -> None:
    assert request(ttl="0" * 50 + "60").ttl == 60


@pytest.mark.parametrize(
    "value",
    [
        -1,
        864001,
        "864001",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1.0",
        1.0,
        1e3,
        "1e3",
        "",
        "١٢",  # Arabic-Indic digits: str.isdigit says yes, the contract says no
        "9" * 5000,  # would exceed Python's int-from-string limit if converted blindly
        True,
        False,
        None,
        [1],
        {"s": 1},
    ],
)
def test_ttl_refuses_everything_else(value: object) -> None:
    assert refused(body(ttl=value)) == {"ttl"}


def test_ttl_is_required() -> None:
    assert refused(body(ttl=...)) == {"ttl"}


# --- include_unengaged ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["include_unengaged", "include_unengage"])
@pytest.mark.parametrize("value", [True, False])
def test_include_unengaged_under_either_spelling(key: str, value: bool) -> None:
    assert request(**{key: value}).include_unengaged is value


@pytest.mark.parametrize("value", ["true", 1, 0, "false", [], {}])
@pytest.mark.parametrize("key", ["include_unengaged", "include_unengage"])
def test_include_unengaged_is_not_coerced(key: str, value: object) -> None:
    assert refused(body(**{key: value})) == {key}


def test_both_spellings_agreeing_is_fine() -> None:
    assert request(include_unengaged=True, include_unengage=True).include_unengaged is True


def test_both_spellings_disagreeing_is_refused() -> None:
    assert refused(body(include_unengaged=True, include_unengage=False)) == {"include_unengaged"}


# --- language ---------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en_US", "tr_TR", "all_ALL"])
def test_language_narrows_to_a_locale(language: str) -> None:
    assert request(language=language).language == language


@pytest.mark.parametrize("language", ["en-US", "en", "xx_US", "", 1, True, "all_all"])
def test_language_must_be_a_locale(language: object) -> None:
    assert refused(body(language=language)) == {"language"}


# --- target -----------------------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["d_wp_browser", "d_wp_os", "d_wp_device"])
def test_builtin_attributes(attribute: str) -> None:
    target = request(target={"attribute": attribute, "values": ["x"]}).target
    assert target is not None and target.builtin


@pytest.mark.parametrize("attribute", ["plan", "loyalty.tier", "Segment-2", "a" * 64])
def test_custom_attributes(attribute: str) -> None:
    target = request(target={"attribute": attribute, "values": ["gold"]}).target
    assert target == Target(attribute, ("gold",)) and not target.builtin


@pytest.mark.parametrize("attribute", ["", " ", "1plan", "a b", "a" * 65, "plan!", 3, None])
def test_bad_attribute_names(attribute: object) -> None:
    assert refused(body(target={"attribute": attribute, "values": ["x"]})) == {"target.attribute"}


@pytest.mark.parametrize("target", ["d_wp_browser", ["Chrome"], 1, True])
def test_target_must_be_an_object(target: object) -> None:
    assert refused(body(target=target)) == {"target"}


def test_target_is_required_for_a_segment_campaign_only() -> None:
    assert refused(body(target=...)) == {"target"}
    assert refused(body(target=None)) == {"target"}
    assert parse_launch(body(target=...), is_all=True).target is None


def test_an_is_all_campaign_may_narrow_by_target_and_it_is_validated() -> None:
    narrowed = parse_launch(body(), is_all=True).target
    assert narrowed == Target("d_wp_browser", ("Chrome", "Firefox"))
    assert refused(body(target={"attribute": "d_wp_os"}), is_all=True) == {"target.values"}


@pytest.mark.parametrize("values", [[], "Chrome", {"a": 1}, None, ["x"] * 101])
def test_values_must_be_a_non_empty_list_of_at_most_100(values: object) -> None:
    assert refused(body(target={"attribute": "plan", "values": values})) == {"target.values"}


def test_hundred_values_are_fine_and_duplicates_collapse() -> None:
    values = [f"v{i}" for i in range(100)]
    assert request(target={"attribute": "plan", "values": values}).target == Target(
        "plan", tuple(values)
    )
    twice = request(target={"attribute": "plan", "values": ["a", "b", "a"]}).target
    assert twice == Target("plan", ("a", "b"))


def test_each_bad_value_is_named_by_its_index() -> None:
    values = ["ok", 1, "x" * 201, None, "a\x00", "😀" * 200]
    assert refused(body(target={"attribute": "plan", "values": values})) == {
        "target.values.1",
        "target.values.2",
        "target.values.3",
        "target.values.4",
    }


def test_values_are_nfc_normalised_like_stored_attributes() -> None:
    target = request(target={"attribute": "city", "values": ["Mu\u0308nchen"]}).target
    assert target == Target("city", ("M\u00fcnchen",))


def test_bad_attribute_and_bad_values_are_named_together() -> None:
    assert refused(body(target={"attribute": "!", "values": [1]})) == {
        "target.attribute",
        "target.values.0",
    }


# --- idempotency fingerprint ------------------------------------------------------------


def test_fingerprint_ignores_key_order_and_spacing() -> None:
    a = json.loads('{"b": 1, "a": {"y": [1, 2], "x": "é"}}')
    b = json.loads('{"a":{"x":"\\u00e9","y":[1,2]},"b":1}')
    assert fingerprint(a) == fingerprint(b)
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint(a))


def test_fingerprint_is_stable_across_runs() -> None:
    # Pinned: stored fingerprints must still match after an upgrade or on another host.
    canonical = b'{"a":true,"ttl":"1000"}'
    assert fingerprint({"ttl": "1000", "a": True}) == hashlib.sha256(canonical).hexdigest()


@pytest.mark.parametrize(
    "other",
    [
        body(ttl="3600"),  # the same meaning, but not the same body
        body(title="Summer sale!"),
        body(target={"attribute": "d_wp_browser", "values": ["Firefox", "Chrome"]}),
        body(extra=None),
    ],
)
def test_fingerprint_tells_different_bodies_apart(other: dict[str, Any]) -> None:
    assert fingerprint(body()) != fingerprint(other)


def test_fingerprint_survives_lone_surrogates() -> None:
    # Such a body is refused later, but computing the key must not fail first.
    assert len(fingerprint({"title": "\ud800"})) == 64


# --- payload ----------------------------------------------------------------------------


def payload(req: LaunchRequest, default_icon: str | None = None) -> dict[str, Any]:
    raw = build_payload(
        req, default_icon=default_icon, token="tok.en", events_url=EVENTS_URL, tag="pc-l1"
    )
    decoded: dict[str, Any] = json.loads(raw.decode("utf-8"))
    compact = json.dumps(decoded, ensure_ascii=False, separators=(",", ":"))
    assert raw == compact.encode("utf-8"), "compact JSON, in the documented key order"
    return decoded


def test_payload_fields() -> None:
    req = request(banner="https://cdn.example.com/b.jpg", description="Short")
    shown = payload(req, "https://cdn.example.com/default.png")
    assert list(shown) == ["title", "body", "icon", "image", "url", "token", "events_url", "tag"]
    assert shown == {
        "title": "Summer sale",
        "body": "Short",
        "icon": "https://cdn.example.com/icon.png",
        "image": "https://cdn.example.com/b.jpg",
        "url": "https://shop.example.com/sale",
        "token": "tok.en",
        "events_url": EVENTS_URL,
        "tag": "pc-l1",
    }


def test_payload_icon_falls_back_to_the_partner_default_and_else_is_left_out() -> None:
    req = request(image=...)
    assert payload(req, "https://cdn.example.com/default.png")["icon"] == (
        "https://cdn.example.com/default.png"
    )
    assert "icon" not in payload(req, None)
    assert "image" not in payload(req, None)


def test_payload_is_utf8_not_escaped() -> None:
    req = request(title="😀" * 100)
    raw = build_payload(req, default_icon=None, token="t", events_url=EVENTS_URL, tag="g")
    assert "😀".encode() * 100 in raw


def test_build_payload_refuses_a_token_or_tag_longer_than_measured() -> None:
    req = request()
    build_payload(
        req, default_icon=None, token="t" * MAX_TOKEN_CHARS, events_url=EVENTS_URL, tag="g"
    )
    with pytest.raises(ValueError):
        build_payload(
            req, default_icon=None, token="t" * (MAX_TOKEN_CHARS + 1), events_url=EVENTS_URL, tag=""
        )
    with pytest.raises(ValueError):
        build_payload(
            req,
            default_icon=None,
            token="t",
            events_url=EVENTS_URL,
            tag="g" * (launches.MAX_TAG_CHARS + 1),
        )


def _longest_valid(**overrides: Any) -> LaunchRequest:
    url = "https://cdn.example.com/" + "a" * (launches.URL_MAX_CHARS - 24)
    fields: dict[str, Any] = {
        "title": "😀" * 100,
        "description": "😀" * 30,
        "image": url,
        "banner": url,
        "link": url,
    }
    fields.update(overrides)
    return request(**fields)


def test_a_typical_launch_fits() -> None:
    req = request(title="😀" * 100, description="😀" * 255)
    assert payload_problem(req, "https://cdn.example.com/d.png", EVENTS_URL) is None


def test_an_oversized_launch_is_refused_before_anything_is_sent() -> None:
    req = _longest_valid()
    reason = payload_problem(req, None, EVENTS_URL)
    assert reason is not None and str(MAX_PAYLOAD_SIZE) in reason
    with pytest.raises(InvalidRequest) as exc:
        check_payload(req, None, EVENTS_URL)
    assert len(exc.value.errors) == 1
    assert exc.value.errors[0].field in {"image", "banner", "link"}


def test_check_payload_names_the_field_taking_the_most_room() -> None:
    long = "https://cdn.example.com/" + "a" * 2000
    req = request(image=long, link=long[:-10], banner=long[:-20], description="x")
    with pytest.raises(InvalidRequest) as exc:
        check_payload(req, None, EVENTS_URL)
    assert [e.field for e in exc.value.errors] == ["image"]


def test_json_escaping_counts_towards_the_size() -> None:
    # A control character costs 6 bytes once escaped (\\u0001), not 1.
    req = request(title="\x01" * 100, description="\x01" * 255, link="https://a.example/")
    raw = build_payload(req, default_icon=None, token="t", events_url=EVENTS_URL, tag="g")
    assert len(raw) > 355 * 6
    assert payload_problem(req, None, EVENTS_URL) is None


def test_the_size_limit_is_exact() -> None:
    """Grow the link one byte at a time: accepted up to MAX_PAYLOAD_SIZE, refused after,
    and the worst-case payload measured is what a real delivery can reach."""
    image = "https://cdn.example.com/" + "i" * 1990
    texts = {"title": "😀" * 100, "description": "😀" * 255, "image": image}
    base = request(link="https://a.example/", **texts)
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
    assert 0 < room < 2000
    fits = request(link="https://a.example/" + "a" * room, **texts)
    over = request(link="https://a.example/" + "a" * (room + 1), **texts)
    assert payload_problem(fits, None, EVENTS_URL) is None
    assert payload_problem(over, None, EVENTS_URL) is not None


def test_the_default_icon_counts_towards_the_size() -> None:
    req = request(link="https://a.example/" + "a" * 1800, image=..., description="d")
    small = "https://cdn.example.com/i.png"
    assert payload_problem(req, small, EVENTS_URL) is None
    assert payload_problem(req, small + "?" + "i" * 2000, EVENTS_URL) is not None
    # The launch's own image replaces the default, so the default no longer counts.
    own = request(link=req.link, image=small, description="d")
    assert payload_problem(own, small + "?" + "i" * 2000, EVENTS_URL) is None


# --- topic ------------------------------------------------------------------------------


@pytest.mark.parametrize("launch_id", [0, 1, 35, 36, 2**31, 2**63 - 1])
def test_topic_is_short_url_safe_and_stable(launch_id: int) -> None:
    topic = topic_for(launch_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", topic)
    assert topic == topic_for(launch_id)
    assert int(topic.removeprefix("pc-l"), 36) == launch_id


def test_topics_differ_between_launches() -> None:
    assert len({topic_for(i) for i in range(1, 2000)}) == 1999
    assert topic_for(1) == "pc-l1" and topic_for(36) == "pc-l10"


@pytest.mark.parametrize("launch_id", [-1, 36**28, True])
def test_topic_refuses_ids_it_cannot_encode(launch_id: int) -> None:
    with pytest.raises(ValueError):
        topic_for(launch_id)


# --- engagement -------------------------------------------------------------------------

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def test_engaged_within_the_window_boundary_included() -> None:
    assert engaged(NOW - timedelta(days=90), NOW, 90)
    assert engaged(NOW - timedelta(days=1), NOW, 90)
    assert not engaged(NOW - timedelta(days=90, seconds=1), NOW, 90)


def test_never_engaged_is_unengaged() -> None:
    assert not engaged(None, NOW, 90)


def test_engagement_in_the_future_counts_as_engaged() -> None:
    assert engaged(NOW + timedelta(minutes=5), NOW, 90)


def test_naive_and_offset_times_are_compared_as_utc() -> None:
    naive = datetime(2024, 3, 4, 12, 0)  # 89 days before NOW, as SQLite returns it
    assert engaged(naive, NOW, 90)
    istanbul = timezone(timedelta(hours=3))
    assert engaged(datetime(2024, 3, 3, 15, 0, tzinfo=istanbul), NOW, 90)  # 12:00 UTC
    assert engaged(datetime(2024, 3, 3, 12, 0), NOW.replace(tzinfo=None), 90)


def test_engagement_cutoff() -> None:
    assert engagement_cutoff(NOW, 90) == NOW - timedelta(days=90)
    assert engagement_cutoff(NOW.replace(tzinfo=None), 1).tzinfo is UTC


# --- silent hours -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "silent"),
    [(0, False), (599, False), (600, True), (700, True), (719, True), (720, False)],
)
def test_silent_window_within_a_day_is_half_open(minutes: int, silent: bool) -> None:
    assert in_silent_hours(minutes, 600, 720) is silent


@pytest.mark.parametrize(
    ("minutes", "silent"),
    [(1319, False), (1320, True), (1439, True), (0, True), (419, True), (420, False), (720, False)],
)
def test_silent_window_wraps_midnight(minutes: int, silent: bool) -> None:
    assert in_silent_hours(minutes, 22 * 60, 7 * 60) is silent


@pytest.mark.parametrize(
    ("start", "end"), [(None, None), (None, 420), (1320, None), (600, 600), (0, 0)]
)
def test_silent_hours_off(start: int | None, end: int | None) -> None:
    assert not any(in_silent_hours(m, start, end) for m in range(0, 1440, 7))


def test_unknown_local_time_is_never_silent() -> None:
    assert not in_silent_hours(None, 0, 1439)


def test_local_minutes_in_a_zone() -> None:
    assert local_minutes(NOW, "Europe/Istanbul") == 15 * 60
    assert local_minutes(NOW, "UTC") == 12 * 60
    assert local_minutes(NOW, "Asia/Kolkata") == 17 * 60 + 30
    assert local_minutes(NOW.replace(tzinfo=None), "America/New_York") == 8 * 60


def test_local_minutes_follow_daylight_saving() -> None:
    winter = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    assert local_minutes(winter, "Europe/Berlin") == 13 * 60
    assert local_minutes(NOW, "Europe/Berlin") == 14 * 60


@pytest.mark.parametrize(
    "tz",
    [None, "", "Nowhere/City", "America", "../../etc/passwd", "/etc/UTC", "UTC\x00", "a" * 300],
)
def test_unknown_zone_means_unknown_local_time(tz: str | None) -> None:
    assert local_minutes(NOW, tz) is None


def test_silent_hours_end_to_end() -> None:
    night_in_istanbul = datetime(2024, 6, 1, 21, 30, tzinfo=UTC)  # 00:30 local
    minutes = local_minutes(night_in_istanbul, "Europe/Istanbul")
    assert in_silent_hours(minutes, 22 * 60, 7 * 60)
    assert not in_silent_hours(local_minutes(night_in_istanbul, "Bogus/Zone"), 22 * 60, 7 * 60)


# --- frequency cap ----------------------------------------------------------------------


def test_frequency_cap() -> None:
    assert not frequency_capped(1000, None)
    assert not frequency_capped(2, 3)
    assert frequency_capped(3, 3)
    assert frequency_capped(4, 3)
    assert frequency_capped(0, 0)


# --- pausing ----------------------------------------------------------------------------


def test_too_few_attempts_never_pause() -> None:
    assert not should_pause(PAUSE_MIN_ATTEMPTS - 1, PAUSE_MIN_ATTEMPTS - 1)
    assert not should_pause(0, 0)


@pytest.mark.parametrize(
    ("attempts", "rejected", "pause"),
    [(50, 40, True), (50, 39, False), (55, 44, True), (55, 43, False), (1000, 1000, True)],
)
def test_pause_when_most_are_rejected_for_one_reason(
    attempts: int, rejected: int, pause: bool
) -> None:
    assert should_pause(attempts, rejected) is pause


@pytest.mark.parametrize(
    ("auth_rejected", "vouched", "counts"),
    [
        (True, True, True),  # a subscription that worked refuses the sender: the key
        (True, False, False),  # public junk made for another key: a drop, nothing more
        (False, True, False),  # 400, other 4xx, 5xx after retries: never the sender's
        (False, False, False),
    ],
)
def test_only_vouched_for_sender_refusals_count_towards_a_pause(
    auth_rejected: bool, vouched: bool, counts: bool
) -> None:
    assert counts_towards_pause(auth_rejected, vouched) is counts


@pytest.mark.parametrize(
    ("launch", "campaign", "audience"),
    [
        (None, "tr_TR", "tr_TR"),  # the published launch body has no language
        ("en_US", "tr_TR", "en_US"),
        ("all_ALL", "tr_TR", None),
        (None, "all_ALL", None),
        ("en_GB", "all_ALL", "en_GB"),
        ("all_ALL", "all_ALL", None),
        (None, None, None),
    ],
)
def test_audience_language_is_the_launch_s_else_the_campaign_s(
    launch: str | None, campaign: str | None, audience: str | None
) -> None:
    assert audience_language(launch, campaign) == audience


def test_pause_threshold_is_exact_for_every_attempt_count() -> None:
    for attempts in range(PAUSE_MIN_ATTEMPTS, 2000):
        threshold = -(-attempts * 4 // 5)  # ceil(0.8 * attempts) in integers
        assert should_pause(attempts, threshold)
        assert not should_pause(attempts, threshold - 1)


# --- states and labels ------------------------------------------------------------------


def test_launch_statuses_are_the_documented_strings() -> None:
    assert [s.value for s in LaunchStatus] == [
        "Scheduled",
        "Queued",
        "Sending",
        "Sent",
        "Paused",
        "Stopped",
        "Failed",
    ]
    assert {LaunchStatus.SENT, LaunchStatus.STOPPED, LaunchStatus.FAILED} == TERMINAL
    assert LaunchStatus.PAUSED not in TERMINAL and LaunchStatus.QUEUED not in TERMINAL


def test_drop_reasons_are_the_statistics_labels() -> None:
    assert {r.value for r in DropReason} == {
        "frequencyCapped",
        "silentHours",
        "unsubscriptions",
        "serviceProviderErrors",
        "internalErrors",
        "payloadTooLarge",
        "senderRefused",  # provisional: removed by a resume, else serviceProviderErrors
        "localTimeMissed",  # a local-time launch's window passed (internalErrors)
    }


def test_delivery_states() -> None:
    assert [s.value for s in DeliveryState] == ["pending", "sent", "dropped"]


def test_public_names_are_exported() -> None:
    for name in launches.__all__:
        assert hasattr(launches, name), name
