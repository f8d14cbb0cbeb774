"""The whole chain with a browser nobody here wrote: a real headless Firefox subscribes
through pushcamp's SDK on the demo page, pushcamp launches a campaign, Firefox's service
worker decrypts and shows the notification and reports it delivered.

Nothing inside the browser is mocked. Firefox's push client speaks Mozilla's WebSocket
push protocol to pushcamp's simulator (its profile names it as its push server), so the
subscription, the VAPID check, the encryption and the delivery are Firefox's own; the
browser's ``ack`` code 100 says it decrypted the push. No WebDriver either: the demo page
reports what it sees to the simulator (``?report=``) and the test watches the simulator
and pushcamp.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from pushcamp.services import partners, tokens
from pushcamp.store import Database
from pushcamp.store.models import Subscriber
from pushcamp.testing.firefox import HeadlessFirefox
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import PushServiceSimulator
from pushcamp.webpush._base64 import b64url_decode
from tests.e2e import bidi

T = TypeVar("T")


def wait(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll ``probe`` until it returns something true; fail naming ``what`` after
    ``timeout`` seconds. (A bound on waiting, not a timing assertion.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


class Partner:
    def __init__(self, db: Database, client: httpx.Client) -> None:
        self.id = f"e{secrets.token_hex(6)}"
        partners.create_partner(db, self.id, "Firefox end to end", 10_000, 10_000)
        self.auth = {"Authorization": f"Bearer {tokens.create_token(db, self.id)}"}
        self.vapid_public_key = partners.vapid_public_key(db, self.id)
        self.client = client

    def launch(self, title: str, body: str) -> tuple[int, dict[str, Any]]:
        """Create and launch a campaign over the HTTP API; wait until the engine is done
        with it; return its id and its launch's counters."""
        created = self.client.post(
            "/v1/single",
            json={
                "partner_id": self.id,
                "title": title,
                "language": "all_ALL",
                "is_all": True,
            },
            headers=self.auth,
        )
        assert created.status_code == 201, created.text
        campaign_id = int(created.json()["campaign_id"])
        launched = self.client.post(
            f"/v1/single/{campaign_id}",
            json={
                "partner_id": self.id,
                "title": title,
                "description": body,
                "link": "https://shop.example/sale",
                "ttl": 3600,
                "include_unengaged": True,
            },
            headers=self.auth,
        )
        assert launched.status_code == 200, launched.text
        return campaign_id, wait(lambda: self.ended(campaign_id), "the launch to end")

    def launch_summary(self, campaign_id: int) -> dict[str, Any]:
        answer = self.client.get(f"/v1/single/{campaign_id}", headers=self.auth)
        assert answer.status_code == 200, answer.text
        (launch,) = answer.json()["launches"]
        summary: dict[str, Any] = launch
        return summary

    def ended(self, campaign_id: int) -> dict[str, Any] | None:
        launch = self.launch_summary(campaign_id)
        return launch if launch["status"] in ("Sent", "Paused", "Stopped", "Failed") else None

    def metrics(self, campaign_id: int) -> dict[str, Any]:
        today = time.strftime("%Y-%m-%d", time.gmtime())
        answer = self.client.post(
            "/v1/statistics/campaign-metrics",
            json={
                "partner_id": self.id,
                "campaign_id": campaign_id,
                "start_date": today,
                "end_date": today,
            },
            headers=self.auth,
        )
        assert answer.status_code == 200, answer.text
        metrics: dict[str, Any] = answer.json()
        return metrics


def subscriber(db: Database, partner_id: str, endpoint: str) -> Any:
    with db.read() as conn:
        return conn.execute(
            select(Subscriber).where(
                Subscriber.partner_id == partner_id, Subscriber.endpoint == endpoint
            )
        ).one_or_none()


def latest_report(sim: PushServiceSimulator, since: float = 0.0) -> dict[str, Any] | None:
    """The demo page's last report (posted after ``since``, a time.time())."""
    reports = [
        r.data for r in sim.page_reports() if r.data.get("page") == "demo" and r.received_at > since
    ]
    return reports[-1] if reports else None


def open_demo(
    firefox: HeadlessFirefox,
    sim: PushServiceSimulator,
    server: ServerProcess,
    partner: Partner,
    *args: str,
) -> dict[str, Any]:
    """Start Firefox on the simulator's gate page, which opens the demo page once the push
    connection is up; return the page's first report (the SDK is ready)."""
    demo = f"{server.url}/demo/{partner.id}?report={quote(sim.reports_url, safe='')}"
    started = time.time()
    firefox.open(sim.gate_url(demo), *args)

    def loaded() -> dict[str, Any] | None:
        report = latest_report(sim, since=started)
        return report if report and report["outcome"] not in (None, "pending") else None

    return wait(loaded, "the demo page to load the SDK in Firefox", timeout=45)


def test_firefox_subscribes_receives_a_launch_and_reports_it_delivered(
    db: Database,
    server: ServerProcess,
    client: httpx.Client,
    push_service: PushServiceSimulator,
    firefox: HeadlessFirefox,
    tmp_path: Path,
) -> None:
    partner = Partner(db, client)

    # -- Firefox subscribes through the SDK, and the subscription reaches pushcamp ------
    push_service.ask_page("subscribe")
    # (BiDi stays unused until the screenshot below: the page reports everything else.)
    ready = open_demo(firefox, push_service, server, partner, *bidi.ARGS)
    assert not ready["outcome"].startswith("error"), ready["log"]
    report = wait(
        lambda: (r := latest_report(push_service)) and r["subscribed"] and r["endpoint"] and r,
        "Firefox to subscribe through the SDK",
    )
    assert report["outcome"] == "subscribed", report["log"]
    endpoint = report["endpoint"]
    row = wait(lambda: subscriber(db, partner.id, endpoint), "pushcamp to store the subscription")
    assert row.active
    assert row.browser == "Firefox"  # from Firefox's own User-Agent
    # Firefox registered with the partner's VAPID key (the SDK's applicationServerKey),
    # and gave pushcamp the keys it made itself: the simulator never saw them.
    (channel,) = push_service.browser_subscriptions()
    assert channel.endpoint == endpoint
    assert b64url_decode(channel.application_server_key or "") == b64url_decode(
        partner.vapid_public_key
    )
    assert len(b64url_decode(row.p256dh)) == 65 and len(b64url_decode(row.auth)) == 16

    # -- a launch over the HTTP API reaches Firefox, which decrypts and shows it ---------
    title = f"Summer sale {secrets.token_hex(3)}"
    body = "Everything 20% off until Sunday"
    campaign_id, launch = partner.launch(title, body)
    assert (launch["status"], launch["targeted"], launch["sent"]) == ("Sent", 1, 1), launch

    acks = wait(lambda: push_service.acks(endpoint), "Firefox to acknowledge the push")
    assert [a.code for a in acks] == [100], "Firefox did not decrypt and deliver the push"
    # The VAPID token the push carried, checked with PyJWT (not pushcamp's code) against
    # the key Firefox subscribed with.
    (message,) = channel.messages
    scheme, _, params = message.headers["Authorization"].partition(" ")
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    assert scheme == "vapid" and fields["k"] == channel.application_server_key

    public = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), b64url_decode(fields["k"])
    )
    claims = jwt.decode(fields["t"], public, algorithms=["ES256"], audience=push_service.url)
    assert claims["sub"]

    shown = wait(
        lambda: (r := latest_report(push_service)) and r["notifications"],
        "the service worker's notification to show in getNotifications()",
    )
    assert shown == [{"title": title, "body": body}]

    # The worker reported "delivered" with the push's signed token: pushcamp counted it.
    wait(
        lambda: partner.launch_summary(campaign_id)["delivered"] == 1,
        "pushcamp to record the worker's delivered event",
    )
    overview = partner.metrics(campaign_id)["overview"]
    assert overview["targeted"] == {"sent": "1", "dropped": "0"}, overview
    assert overview["deliveryRate"]["delivered"] == "1", overview

    # -- the documentation's picture (docs/sdk.md): the demo page as Firefox shows it now -
    assert firefox.log_path is not None
    picture = bidi.screenshot(
        bidi.bidi_url(firefox.log_path), artifacts(tmp_path) / "firefox-demo.png"
    )
    assert picture.read_bytes().startswith(b"\x89PNG")

    # -- the page unsubscribes (in the browser only); the next launch finds it gone ------
    push_service.ask_page("revoke")
    wait(lambda: not channel.active, "Firefox to unregister the channel at the push service")
    wait(
        lambda: (r := latest_report(push_service)) and r["outcome"] == "revoked",
        "the page to report the subscription dropped",
    )
    assert subscriber(db, partner.id, endpoint).active  # pushcamp was not told

    _, later = partner.launch(f"Second chance {secrets.token_hex(3)}", body)
    assert (later["targeted"], later["sent"], later["dropped"]) == (1, 0, 1), later
    gone = subscriber(db, partner.id, endpoint)
    assert (gone.active, gone.deactivated_reason) == (False, "gone")
    assert [a.code for a in push_service.acks(endpoint)] == [100]  # nothing more arrived


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PUSHCAMP_TEST_ARTIFACTS") or tmp_path) / "e2e"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(autouse=True)
def _keep_firefox_log_on_failure(tmp_path: Path) -> Any:
    yield
    log = tmp_path / "firefox.log"
    if log.exists() and os.environ.get("PUSHCAMP_TEST_ARTIFACTS"):
        shutil.copy(log, artifacts(tmp_path) / "firefox.log")
