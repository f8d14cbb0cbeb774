"""POST/DELETE /v1/subscriptions and the SDK config (contract §3), over real HTTP against
a real server and database. Each test says the rule it protects."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from pushcamp.store import Database
from pushcamp.store.models import Subscriber
from pushcamp.testing.simulator import PushServiceSimulator, SimulatedSubscription
from pushcamp.webpush import b64url_encode
from tests.conftest import Tenant
from tests.integration.launch.conftest import create_campaign, launch_body, wait_for_launches
from tests.integration.subscribers.conftest import (
    CHROME_WINDOWS,
    FIREFOX_LINUX,
    SAFARI_IPHONE,
    browser_keys,
    local_endpoint,
    subscriber,
    subscribers,
    subscription,
)


def fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["message"] == "Bad Request"
    return {e["field"] for e in body["errors"]}


def test_subscribe_creates_then_resubscribe_updates_never_duplicates(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    body = subscription(tenant, language="en-US")
    first = client.post("/v1/subscriptions", json=body)
    assert first.status_code == 201 and first.json() == {"success": True}
    renewed = {**body, "keys": browser_keys(), "timezone": "Europe/Istanbul"}
    again = client.post("/v1/subscriptions", json=renewed)
    assert again.status_code == 200 and again.json() == {"success": True}
    rows = subscribers(db, tenant.partner_id)
    assert len(rows) == 1
    row = rows[0]
    assert row["p256dh"] == renewed["keys"]["p256dh"] and row["auth"] == renewed["keys"]["auth"]
    assert row["language"] == "en_US"  # kept: the re-subscribe did not send one
    assert row["timezone"] == "Europe/Istanbul"
    assert row["active"] is True and row["last_engaged_at"] is not None


def test_json_is_accepted_whatever_the_content_type(client: httpx.Client, tenant: Tenant) -> None:
    # The SDK sends text/plain to stay a CORS "simple request".
    r = client.post(
        "/v1/subscriptions",
        content=json.dumps(subscription(tenant)),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert r.status_code == 201


def test_pushsubscriptionchange_replaces_the_old_row_and_keeps_its_attributes(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    old = subscription(
        tenant, language="tr", timezone="Europe/Istanbul", attributes={"plan": "gold"}
    )
    assert client.post("/v1/subscriptions", json=old).status_code == 201
    new = subscription(tenant, old_endpoint=old["endpoint"])
    assert client.post("/v1/subscriptions", json=new).status_code == 201
    gone = subscriber(db, tenant.partner_id, old["endpoint"])
    assert gone["active"] is False and gone["deactivated_reason"] == "replaced"
    current = subscriber(db, tenant.partner_id, new["endpoint"])
    assert current["active"] is True
    assert current["attributes"] == {"plan": "gold"}
    assert current["language"] == "tr_TR" and current["timezone"] == "Europe/Istanbul"
    assert current["last_engaged_at"] == gone["last_engaged_at"]
    assert len([r for r in subscribers(db, tenant.partner_id) if r["active"]]) == 1


def test_pushsubscriptionchange_with_own_attributes_uses_them(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    old = subscription(tenant, attributes={"plan": "gold"})
    client.post("/v1/subscriptions", json=old)
    new = subscription(tenant, old_endpoint=old["endpoint"], attributes={"plan": "free"})
    assert client.post("/v1/subscriptions", json=new).status_code == 201
    assert subscriber(db, tenant.partner_id, new["endpoint"])["attributes"] == {"plan": "free"}


def test_unsubscribe_deactivates_and_is_idempotent(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    body = subscription(tenant)
    client.post("/v1/subscriptions", json=body)
    gone = {"partner_id": tenant.partner_id, "endpoint": body["endpoint"]}
    r = client.request("DELETE", "/v1/subscriptions", json=gone)
    assert r.status_code == 200 and r.json() == {"success": True}
    row = subscriber(db, tenant.partner_id, body["endpoint"])
    assert row["active"] is False and row["deactivated_reason"] == "unsubscribed"
    assert client.request("DELETE", "/v1/subscriptions", json=gone).status_code == 200
    unknown = {"partner_id": tenant.partner_id, "endpoint": local_endpoint()}
    assert client.request("DELETE", "/v1/subscriptions", json=unknown).status_code == 200
    # Subscribing again brings the same row back.
    assert client.post("/v1/subscriptions", json=body).status_code == 200
    row = subscriber(db, tenant.partner_id, body["endpoint"])
    assert row["active"] is True and row["deactivated_reason"] is None


@pytest.mark.parametrize(
    ("given", "stored"),
    [("en-US", "en_US"), ("en_us", "en_US"), ("tr", "tr_TR"), ("de-AT", "de_AT")],
)
def test_language_is_normalised(
    client: httpx.Client, tenant: Tenant, db: Database, given: str, stored: str
) -> None:
    body = subscription(tenant, language=given)
    assert client.post("/v1/subscriptions", json=body).status_code == 201
    assert subscriber(db, tenant.partner_id, body["endpoint"])["language"] == stored


def test_unknown_language_is_400(client: httpx.Client, tenant: Tenant) -> None:
    r = client.post("/v1/subscriptions", json=subscription(tenant, language="xx-QQ"))
    assert fields(r) == {"language"}


@pytest.mark.parametrize("zone", ["Mars/Olympus", "europe/istanbul", "+03:00", ""])
def test_bad_timezone_is_400(client: httpx.Client, tenant: Tenant, zone: str) -> None:
    assert fields(client.post("/v1/subscriptions", json=subscription(tenant, timezone=zone))) == {
        "timezone"
    }


def test_p256dh_not_on_the_curve_is_400(client: httpx.Client, tenant: Tenant) -> None:
    body = subscription(tenant)
    body["keys"]["p256dh"] = "BA" + "A" * 85  # 0x04 followed by (0, 0): not a curve point
    assert fields(client.post("/v1/subscriptions", json=body)) == {"keys.p256dh"}


@pytest.mark.parametrize("size", [15, 17, 0])
def test_auth_secret_must_be_16_bytes(client: httpx.Client, tenant: Tenant, size: int) -> None:
    body = subscription(tenant)
    body["keys"]["auth"] = b64url_encode(b"a" * size)
    assert fields(client.post("/v1/subscriptions", json=body)) == {"keys.auth"}


def test_keys_are_stored_in_one_canonical_spelling(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    body = subscription(tenant)
    canonical = dict(body["keys"])
    body["keys"] = {"p256dh": canonical["p256dh"] + "=", "auth": canonical["auth"] + "=="}
    assert client.post("/v1/subscriptions", json=body).status_code == 201
    row = subscriber(db, tenant.partner_id, body["endpoint"])
    assert (row["p256dh"], row["auth"]) == (canonical["p256dh"], canonical["auth"])


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (CHROME_WINDOWS, ("Chrome", "Windows", "desktop")),
        (FIREFOX_LINUX, ("Firefox", "Linux", "desktop")),
        (SAFARI_IPHONE, ("Safari", "iOS", "mobile")),
    ],
)
def test_browser_os_and_device_come_from_the_user_agent(
    client: httpx.Client, tenant: Tenant, db: Database, agent: str, expected: tuple[str, ...]
) -> None:
    body = subscription(tenant)
    r = client.post("/v1/subscriptions", json=body, headers={"User-Agent": agent})
    assert r.status_code == 201
    row = subscriber(db, tenant.partner_id, body["endpoint"])
    assert (row["browser"], row["os"], row["device"]) == expected


def test_given_device_attributes_win_over_the_user_agent(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    body = subscription(tenant, d_wp_browser="Edg", d_wp_device="tablet")
    client.post("/v1/subscriptions", json=body, headers={"User-Agent": CHROME_WINDOWS})
    row = subscriber(db, tenant.partner_id, body["endpoint"])
    assert (row["browser"], row["os"], row["device"]) == ("Edg", "Windows", "tablet")


def test_attributes_are_stored_as_strings(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    body = subscription(tenant, attributes={"plan": "gold", "visits": 3, "vip": True})
    assert client.post("/v1/subscriptions", json=body).status_code == 201
    stored = subscriber(db, tenant.partner_id, body["endpoint"])["attributes"]
    assert stored == {"plan": "gold", "visits": "3", "vip": "true"}


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({f"a{i}": "x" for i in range(33)}, "attributes"),
        ({"long": "x" * 201}, "attributes.long"),
        ({"bad name": "x"}, "attributes.bad name"),
        ({"d_wp_device": "phone"}, "attributes.d_wp_device"),
        ({"d_wp_browser": 3}, "attributes.d_wp_browser"),
        ({"nested": {"a": 1}}, "attributes.nested"),
        ({"list": [1]}, "attributes.list"),
        ("plan=gold", "attributes"),
    ],
)
def test_attribute_limits(
    client: httpx.Client, tenant: Tenant, db: Database, attributes: object, field: str
) -> None:
    body = subscription(tenant, attributes=attributes)
    assert fields(client.post("/v1/subscriptions", json=body)) == {field}
    assert subscribers(db, tenant.partner_id) == []


def test_at_most_32_attributes_pass(client: httpx.Client, tenant: Tenant) -> None:
    body = subscription(tenant, attributes={f"a{i}": "x" * 200 for i in range(32)})
    assert client.post("/v1/subscriptions", json=body).status_code == 201


# --- no SSRF: pushcamp will POST to whatever endpoint it stores -----------------------------

REFUSED = [
    "http://fcm.googleapis.com/fcm/send/abc",  # plain http on a real push host
    "http://example.org/push",  # plain http, not loopback
    "https://10.0.0.1/push",  # private address
    "https://169.254.169.254/latest/meta-data/",  # cloud metadata
    "https://[::1]/push",  # IPv6 loopback, not listed
    "https://127.0.0.2/push",  # loopback, not listed (127.0.0.1 unlisted: test_public_limits)
    "https://evil.example/push",  # unknown host
    "https://fcm.googleapis.com.evil.example/push",
    "https://user:pw@fcm.googleapis.com/fcm/send/abc",
    "ftp://fcm.googleapis.com/x",
    "not a url",
    "http://[::1]:9/push",
    "https://fcm.googleapis.com:8443/fcm/send/abc",  # push services listen on 443 only
]
ACCEPTED = [
    "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b",
    "https://android.googleapis.com/gcm/send/abc",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
    "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAB",
    "https://web.push.apple.com/QGuQyavXutnMH",
    "http://127.0.0.1:9/push/listed",
    "http://localhost:9/push/listed",
]


@pytest.mark.parametrize("endpoint", REFUSED)
def test_endpoints_pushcamp_must_not_call_are_refused(
    client: httpx.Client, tenant: Tenant, db: Database, endpoint: str
) -> None:
    assert fields(client.post("/v1/subscriptions", json=subscription(tenant, endpoint))) == {
        "endpoint"
    }
    assert subscribers(db, tenant.partner_id) == []


@pytest.mark.parametrize("endpoint", ACCEPTED)
def test_push_service_endpoints_are_accepted(
    client: httpx.Client, tenant: Tenant, endpoint: str
) -> None:
    assert client.post("/v1/subscriptions", json=subscription(tenant, endpoint)).status_code == 201


# --- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"[]", b"null", b'{"partner_id": NaN}', b"\xff\xfe", b'"x"']
)
def test_malformed_bodies_are_400(client: httpx.Client, raw: bytes) -> None:
    r = client.post("/v1/subscriptions", content=raw)
    assert r.status_code == 400 and r.json()["message"] == "Bad Request"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"partner_id": 100000001}, "partner_id"),
        ({"keys": "p256dh"}, "keys"),
        ({"endpoint": 5}, "endpoint"),
        ({"language": ["en"]}, "language"),
        ({"timezone": 3}, "timezone"),
        ({"old_endpoint": 7}, "old_endpoint"),
        ({"d_wp_device": "fridge"}, "d_wp_device"),
    ],
)
def test_wrong_types_are_400_naming_the_field(
    client: httpx.Client, tenant: Tenant, change: dict[str, object], field: str
) -> None:
    assert field in fields(
        client.post("/v1/subscriptions", json={**subscription(tenant), **change})
    )


def test_missing_fields_are_named(client: httpx.Client, tenant: Tenant) -> None:
    r = client.post("/v1/subscriptions", json={"partner_id": tenant.partner_id})
    assert fields(r) >= {"endpoint", "keys"}
    assert "partner_id" in fields(client.post("/v1/subscriptions", json={"endpoint": "x"}))


def test_nul_and_lone_surrogates_are_400_not_500(client: httpx.Client, tenant: Tenant) -> None:
    for endpoint in ("http://127.0.0.1:9/a\u0000b", "http://127.0.0.1:9/\ud800"):
        body = json.dumps(subscription(tenant, endpoint)).encode()
        assert client.post("/v1/subscriptions", content=body).status_code == 400
    gone = json.dumps({"partner_id": tenant.partner_id, "endpoint": "x\u0000"}).encode()
    assert client.request("DELETE", "/v1/subscriptions", content=gone).status_code == 400
    change = json.dumps(subscription(tenant, old_endpoint="\ud800")).encode()
    assert client.post("/v1/subscriptions", content=change).status_code == 400


def test_oversized_body_is_refused(client: httpx.Client, tenant: Tenant) -> None:
    body = subscription(tenant, attributes={"pad": "x" * 20_000})
    r = client.post("/v1/subscriptions", json=body)
    assert r.status_code == 413 and r.json() == {"message": "Payload Too Large"}

    def chunks():  # type: ignore[no-untyped-def]
        # No Content-Length: refused once the chunks pass the limit.
        yield b'{"partner_id": "' + tenant.partner_id.encode() + b'", "pad": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    r = client.post("/v1/subscriptions", content=chunks())
    assert r.status_code == 413


def test_unknown_partner_is_400(client: httpx.Client) -> None:
    r = client.post(
        "/v1/subscriptions",
        json={
            "partner_id": "no-such-partner",
            "endpoint": local_endpoint(),
            "keys": browser_keys(),
        },
    )
    assert fields(r) == {"partner_id"}


def test_partner_in_url_must_match_the_body(client: httpx.Client, tenant: Tenant) -> None:
    r = client.post("/v1/subscriptions?partner_id=someone-else", json=subscription(tenant))
    assert fields(r) == {"partner_id"}
    ok = client.post(f"/v1/subscriptions?partner_id={tenant.partner_id}", json=subscription(tenant))
    assert ok.status_code == 201


# --- tenants --------------------------------------------------------------------------------


def test_same_endpoint_of_two_partners_are_two_independent_rows(
    client: httpx.Client, make_tenant, db: Database
) -> None:
    a, b = make_tenant(), make_tenant()
    endpoint = local_endpoint()
    body_b = subscription(b, endpoint, attributes={"shop": "b"})
    assert client.post("/v1/subscriptions", json=body_b).status_code == 201
    before = subscriber(db, b.partner_id, endpoint)
    # A subscribes the same endpoint, changes it, replaces it, unsubscribes it: B's row
    # never moves.
    assert client.post("/v1/subscriptions", json=subscription(a, endpoint)).status_code == 201
    client.post("/v1/subscriptions", json=subscription(a, endpoint, attributes={"shop": "a"}))
    client.post("/v1/subscriptions", json=subscription(a, old_endpoint=endpoint))
    gone = {"partner_id": a.partner_id, "endpoint": endpoint}
    client.request("DELETE", "/v1/subscriptions", json=gone)
    client.post("/v1/events", json={"type": "visit", **gone})
    assert subscriber(db, b.partner_id, endpoint) == before
    assert subscriber(db, a.partner_id, endpoint)["active"] is False


# --- visits ---------------------------------------------------------------------------------


def test_visit_refreshes_engagement(client: httpx.Client, tenant: Tenant, db: Database) -> None:
    body = subscription(tenant)
    client.post("/v1/subscriptions", json=body)
    long_ago = datetime.now(UTC) - timedelta(days=200)
    with db.write() as conn:
        conn.execute(
            update(Subscriber)
            .where(Subscriber.partner_id == tenant.partner_id)
            .values(last_engaged_at=long_ago)
        )
    visit = {"type": "visit", "partner_id": tenant.partner_id, "endpoint": body["endpoint"]}
    r = client.post("/v1/events", json=visit)
    assert r.status_code == 200 and r.json() == {"success": True}
    engaged = subscriber(db, tenant.partner_id, body["endpoint"])["last_engaged_at"]
    if engaged.tzinfo is None:  # SQLite hands datetimes back naive (UTC)
        engaged = engaged.replace(tzinfo=UTC)
    assert engaged > datetime.now(UTC) - timedelta(minutes=5)


def test_visit_of_an_unknown_endpoint_is_harmless(client: httpx.Client, tenant: Tenant) -> None:
    visit = {"type": "visit", "partner_id": tenant.partner_id, "endpoint": local_endpoint()}
    assert client.post("/v1/events", json=visit).status_code == 200
    assert "endpoint" in fields(
        client.post("/v1/events", json={"type": "visit", "partner_id": tenant.partner_id})
    )


# --- SDK config -----------------------------------------------------------------------------


def test_sdk_config(client: httpx.Client, tenant: Tenant) -> None:
    r = client.get(f"/sdk/{tenant.partner_id}/config")
    assert r.status_code == 200
    config = r.json()
    base = str(client.base_url).rstrip("/")
    assert config == {
        "partner_id": tenant.partner_id,
        "vapid_public_key": config["vapid_public_key"],
        "subscribe_url": f"{base}/v1/subscriptions",
        "events_url": f"{base}/v1/events",
        "service_worker_url": "/pushcamp-sw.js",
    }
    assert len(config["vapid_public_key"]) == 87


@pytest.mark.parametrize("partner", ["no-such-partner", "..", "a" * 65, "%00"])
def test_sdk_config_of_an_unknown_partner_is_404(client: httpx.Client, partner: str) -> None:
    r = client.get(f"/sdk/{partner}/config")
    assert r.status_code == 404 and r.json() == {"message": "Not Found"}


# --- one canonical spelling per endpoint ---------------------------------------------------


def test_spellings_of_one_endpoint_make_one_row(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    """Scheme and host case, a trailing dot and an explicit :443 do not make a second
    row; the path keeps its case."""
    path = f"/fcm/send/AbC{secrets.token_urlsafe(8)}"
    canonical = f"https://fcm.googleapis.com{path}"
    shouty = f"HTTPS://FCM.GoogleAPIs.com.:443{path}"
    first = client.post("/v1/subscriptions", json=subscription(tenant, shouty))
    assert first.status_code == 201, first.text
    second = client.post("/v1/subscriptions", json=subscription(tenant, canonical))
    assert second.status_code == 200, second.text
    third = client.post(
        "/v1/subscriptions", json=subscription(tenant, f"https://fcm.googleapis.com:443{path}")
    )
    assert third.status_code == 200
    assert [r["endpoint"] for r in subscribers(db, tenant.partner_id)] == [canonical]
    # The path is case-sensitive: another case is another endpoint.
    other = client.post(
        "/v1/subscriptions", json=subscription(tenant, canonical.replace("AbC", "abc"))
    )
    assert other.status_code == 201
    assert len(subscribers(db, tenant.partner_id)) == 2


def test_visit_unsubscribe_and_replace_find_any_spelling(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    path = f"/fcm/send/{secrets.token_urlsafe(8)}"
    canonical = f"https://fcm.googleapis.com{path}"
    spelt = f"https://FCM.googleapis.COM.:443{path}"
    body = subscription(tenant, canonical, attributes={"plan": "gold"})
    assert client.post("/v1/subscriptions", json=body).status_code == 201
    long_ago = datetime.now(UTC) - timedelta(days=300)
    with db.write() as conn:
        conn.execute(
            update(Subscriber)
            .where(Subscriber.partner_id == tenant.partner_id)
            .values(last_engaged_at=long_ago)
        )
    visit = {"type": "visit", "partner_id": tenant.partner_id, "endpoint": spelt}
    assert client.post("/v1/events", json=visit).status_code == 200
    engaged = subscriber(db, tenant.partner_id, canonical)["last_engaged_at"]
    assert engaged.replace(tzinfo=UTC) > datetime.now(UTC) - timedelta(minutes=5)
    # pushsubscriptionchange naming the old endpoint in another spelling replaces it.
    new = f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(8)}"
    changed = subscription(tenant, new, old_endpoint=spelt)
    assert client.post("/v1/subscriptions", json=changed).status_code == 201
    old_row = subscriber(db, tenant.partner_id, canonical)
    assert old_row["active"] is False and old_row["deactivated_reason"] == "replaced"
    assert subscriber(db, tenant.partner_id, new)["attributes"] == {"plan": "gold"}
    # Unsubscribing in another spelling deactivates the row.
    new_spelt = "HTTPS://FCM.GOOGLEAPIS.COM.:443" + new.removeprefix("https://fcm.googleapis.com")
    gone = {"partner_id": tenant.partner_id, "endpoint": new_spelt}
    assert client.request("DELETE", "/v1/subscriptions", json=gone).status_code == 200
    assert subscriber(db, tenant.partner_id, new)["active"] is False


# --- built-ins given inside attributes ------------------------------------------------------


def test_builtins_inside_attributes_set_the_builtin_columns(
    client: httpx.Client, tenant: Tenant, db: Database
) -> None:
    attributes = {
        "d_wp_browser": "Firefox",
        "d_wp_os": "Android",
        "d_wp_device": "mobile",
        "plan": "gold",
    }
    body = subscription(tenant, attributes=attributes)
    assert (
        client.post(
            "/v1/subscriptions", json=body, headers={"User-Agent": CHROME_WINDOWS}
        ).status_code
        == 201
    )
    row = subscriber(db, tenant.partner_id, body["endpoint"])
    assert (row["browser"], row["os"], row["device"]) == ("Firefox", "Android", "mobile")
    assert row["attributes"] == {"plan": "gold"}
    # Both given: the top-level field wins.
    both = subscription(tenant, d_wp_browser="Safari", attributes={"d_wp_browser": "Firefox"})
    assert client.post("/v1/subscriptions", json=both).status_code == 201
    row = subscriber(db, tenant.partner_id, both["endpoint"])
    assert row["browser"] == "Safari" and row["attributes"] == {}


@pytest.fixture(scope="module")
def sim() -> Iterator[PushServiceSimulator]:
    with PushServiceSimulator(seed=11) as simulator:
        yield simulator


def test_a_launch_targeting_a_builtin_given_as_an_attribute_reaches_exactly_those(
    client: httpx.Client, tenant: Tenant, db: Database, sim: PushServiceSimulator
) -> None:
    """Subscribed through the HTTP API with ``attributes.d_wp_browser``, launched with
    ``target: {"attribute": "d_wp_browser", ...}``: what the push service received."""

    def subscribe(**fields: Any) -> SimulatedSubscription:
        made = sim.subscribe()
        body = {"partner_id": tenant.partner_id, **made.to_json(), **fields}
        answer = client.post("/v1/subscriptions", json=body, headers={"User-Agent": FIREFOX_LINUX})
        assert answer.status_code == 201, answer.text
        return made

    firefox = [subscribe(attributes={"d_wp_browser": "Firefox", "plan": "gold"}) for _ in range(3)]
    chrome = [subscribe(attributes={"d_wp_browser": "Chrome"}) for _ in range(2)]
    # The top-level field wins over the attribute, and over the User-Agent (Firefox).
    overridden = subscribe(d_wp_browser="Safari", attributes={"d_wp_browser": "Firefox"})
    campaign_id = create_campaign(client, tenant, is_all=False)
    body = launch_body(
        tenant.partner_id, target={"attribute": "d_wp_browser", "values": ["Firefox"]}
    )
    answer = client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    [launch] = wait_for_launches(client, tenant, campaign_id)
    assert launch["sent"] == 3
    assert [len(sim.messages(s)) for s in firefox] == [1, 1, 1]
    assert [len(sim.messages(s)) for s in [*chrome, overridden]] == [0, 0, 0]
    # Targeting a custom attribute still works beside them.
    campaign_id = create_campaign(client, tenant, is_all=False)
    body = launch_body(tenant.partner_id, target={"attribute": "plan", "values": ["gold"]})
    assert (
        client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth).status_code == 200
    )
    wait_for_launches(client, tenant, campaign_id)
    assert [len(sim.messages(s)) for s in firefox] == [2, 2, 2]
    assert [len(sim.messages(s)) for s in [*chrome, overridden]] == [0, 0, 0]
