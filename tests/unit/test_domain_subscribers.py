"""Subscription rules without a database: the one canonical spelling of an endpoint, and
the built-in attributes given inside ``attributes``."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushcamp.domain.subscribers import canonical_endpoint, endpoint_problem, parse_subscription
from pushcamp.encoding import b64url_encode
from pushcamp.errors import InvalidRequest

FCM = "https://fcm.googleapis.com/fcm/send/x"


def keys() -> dict[str, str]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {"p256dh": b64url_encode(point), "auth": b64url_encode(secrets.token_bytes(16))}


def parse(**fields: Any) -> Any:
    return parse_subscription({"endpoint": FCM, "keys": keys(), **fields})


def problems(**fields: Any) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as caught:
        parse(**fields)
    return {e.field: e.reason for e in caught.value.errors}


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("HTTPS://FCM.GoogleAPIs.com.:443/fcm/send/x", FCM),
        ("https://fcm.googleapis.com:443/fcm/send/x", FCM),
        ("https://FCM.GOOGLEAPIS.COM/fcm/send/x", FCM),
        ("https://fcm.googleapis.com./fcm/send/x", FCM),
        (FCM, FCM),
        # The path and query are case-sensitive: kept exactly.
        (
            "https://fcm.googleapis.com/fcm/send/AbC?Q=R",
            "https://fcm.googleapis.com/fcm/send/AbC?Q=R",
        ),
        (
            "Https://wns2-par02p.Notify.Windows.com/w/?token=AbC",
            "https://wns2-par02p.notify.windows.com/w/?token=AbC",
        ),
        # Another port on an operator's host is part of the address.
        ("http://LocalHost.:9090/push/Ab", "http://localhost:9090/push/Ab"),
        ("http://127.0.0.1:80/push/Ab", "http://127.0.0.1/push/Ab"),
        ("https://[::1]:443/x", "https://[::1]/x"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
        # Not a URL: unchanged (it matches nothing).
        ("not a url", "not a url"),
        ("https://fcm.googleapis.com:99999/x", "https://fcm.googleapis.com:99999/x"),
    ],
)
def test_canonical_endpoint(given: str, canonical: str) -> None:
    assert canonical_endpoint(given) == canonical
    assert canonical_endpoint(canonical) == canonical  # idempotent


def test_subscriptions_come_back_canonical() -> None:
    sub = parse_subscription(
        {"endpoint": "HTTPS://FCM.GoogleAPIs.com.:443/fcm/send/x", "keys": keys()}
    )
    assert sub.endpoint == FCM


@pytest.mark.parametrize(
    "url",
    [
        "https://fcm.googleapis.com:8443/fcm/send/x",
        "https://updates.push.services.mozilla.com:80/wpush/v2/x",
        "https://x.notify.windows.com:444/w",
    ],
)
def test_other_ports_on_push_services_are_refused(url: str) -> None:
    assert endpoint_problem(url) == "must not name a port other than 443 on a push-service host"
    assert endpoint_problem(url.replace(url.split("/")[2].split(":")[1], "443", 1)) is None


def test_builtins_inside_attributes_are_the_builtins() -> None:
    sub = parse(
        attributes={
            "d_wp_browser": "Firefox",
            "d_wp_os": "Android",
            "d_wp_device": "mobile",
            "plan": "gold",
        }
    )
    assert (sub.browser, sub.os, sub.device) == ("Firefox", "Android", "mobile")
    assert sub.attributes == {"plan": "gold"}


def test_the_top_level_field_wins_over_the_attribute() -> None:
    sub = parse(d_wp_browser="Chrome", attributes={"d_wp_browser": "Firefox"})
    assert sub.browser == "Chrome" and sub.attributes == {}


def test_builtins_in_attributes_win_over_the_user_agent() -> None:
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
    sub = parse_subscription(
        {"endpoint": FCM, "keys": keys(), "attributes": {"d_wp_device": "tablet"}},
        user_agent=firefox,
    )
    assert (sub.browser, sub.device) == ("Firefox", "tablet")


@pytest.mark.parametrize(
    ("attributes", "field", "reason"),
    [
        ({"d_wp_device": "phone"}, "attributes.d_wp_device", "must be desktop, mobile or tablet"),
        ({"d_wp_browser": ""}, "attributes.d_wp_browser", "must be 1-64 characters"),
        ({"d_wp_os": "x" * 65}, "attributes.d_wp_os", "must be 1-64 characters"),
        ({"d_wp_os": 7}, "attributes.d_wp_os", "must be a string"),
        ({"d_wp_browser": None, "x": 1}, None, None),
    ],
)
def test_builtins_in_attributes_are_checked_like_the_fields(
    attributes: dict[str, object], field: str | None, reason: str | None
) -> None:
    if field is None:
        assert parse(attributes=attributes).attributes == {"x": "1"}
        return
    assert problems(attributes=attributes) == {field: reason}
    # A bad attribute is refused even when the top-level field is given and wins.
    key = field.removeprefix("attributes.")
    good = "mobile" if key == "d_wp_device" else "ok"
    assert problems(attributes=attributes, **{key: good}) == {field: reason}


def test_builtins_do_not_count_towards_the_custom_attribute_limit() -> None:
    custom = {f"a{i}": "v" for i in range(32)}
    builtins = {"d_wp_browser": "Safari", "d_wp_os": "iOS", "d_wp_device": "mobile"}
    sub = parse(attributes={**custom, **builtins})
    assert sub.attributes == custom and sub.device == "mobile"
    assert "attributes" in problems(attributes={**custom, "a32": "v"})
