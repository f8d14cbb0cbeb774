"""Browser fixtures, shared by every test that drives a real browser (the SDK's here; the
panel's may use ``browser_context`` and ``page`` too).

One headless Chromium (Debian's, driven by Playwright) per test module, with a regular
persistent profile and a desktop notification server of its own (desktop.py), so that
notifications can be clicked and dismissed the way a person does it.

Chromium and dbus-daemon come from the system (``./test`` installs both with apt-get).
Without them the browser tests are skipped with the reason, except under CI (``CI=true``),
where a missing browser fails the run instead of passing it silently.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import http_ece
import httpx
import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

from pushcamp.services import partners, tokens
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import PushServiceSimulator, SimulatedSubscription
from tests.browser.desktop import DesktopNotifications, find_dbus_daemon

CHROMIUM_ARGS = [
    "--no-sandbox",  # containers have no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def require(what: str, found: str | None) -> str:
    """``found``, or fail (under CI) / skip (elsewhere) naming what is missing."""
    if found is not None:
        return found
    reason = f"{what} is not installed (./test installs it with apt-get when run as root)"
    if under_ci():
        pytest.fail(f"CI=true and {reason}: the browser tests cannot run", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def desktop() -> Iterator[DesktopNotifications]:
    notifications = DesktopNotifications(require("dbus-daemon", find_dbus_daemon()))
    try:
        yield notifications
    finally:
        notifications.close()


@pytest.fixture(scope="module")
def browser_context(desktop: DesktopNotifications) -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh persistent profile (a regular profile: Chromium
    forwards notification clicks only to one), its notifications sent to ``desktop``.
    One per module: Playwright's sync API runs one instance at a time, and other test
    modules (the panel's) start their own."""
    executable = require("chromium", find_chromium())
    profile = tempfile.mkdtemp(prefix="pushcamp-chromium-")
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": desktop.address}
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                env={k: v for k, v in env.items() if v is not None},
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: BrowserContext) -> Iterator[Page]:
    """A fresh tab, closed after the test."""
    p = browser_context.new_page()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Errors the page logged or threw, collected from the moment the test starts."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"exception: {error}"))
    return errors


# -- a partner, its demo page, and real launches to it --------------------------------------


@dataclass(frozen=True)
class Site:
    """A partner of its own, with an API token, whose demo page (its own service-worker
    scope on pushcamp's origin) plays the partner's site."""

    partner_id: str
    origin: str
    api_token: str

    @property
    def scope(self) -> str:
        return f"/demo/{self.partner_id}"

    def demo(self, query: str = "") -> str:
        return f"{self.origin}{self.scope}{query}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_token}"}


@pytest.fixture
def site(db: Database, server: ServerProcess) -> Site:
    partner_id = f"b{secrets.token_hex(6)}"
    partners.create_partner(db, partner_id, "browser test", 10_000, 10_000)
    return Site(partner_id, server.url, tokens.create_token(db, partner_id))


@pytest.fixture(scope="session")
def sim() -> Iterator[PushServiceSimulator]:
    with PushServiceSimulator(seed=5) as simulator:
        yield simulator


@dataclass(frozen=True)
class Launched:
    """A real launch and the push it made, as the push service received it."""

    campaign_id: int
    launch_id: int
    payload: str  # the plaintext, decrypted with http_ece (not pushcamp's code)

    @property
    def fields(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.payload)
        return data


def subscribe_at_simulator(
    client: httpx.Client, site: Site, sim: PushServiceSimulator, **fields: Any
) -> SimulatedSubscription:
    """A subscription issued by the simulator, registered the way the SDK registers one."""
    sub = sim.subscribe()
    body = {"partner_id": site.partner_id, **sub.to_json(), **fields}
    body.pop("expirationTime", None)
    answer = client.post("/v1/subscriptions", json=body)
    assert answer.status_code == 201, answer.text
    return sub


def launch(
    client: httpx.Client,
    site: Site,
    sim: PushServiceSimulator,
    sub: SimulatedSubscription,
    *,
    title: str,
    link: str,
    **extra: Any,
) -> Launched:
    """Create and launch a campaign through the HTTP API (``extra``: more fields of the
    launch body), wait until the engine sent it, and return the push ``sub`` received."""
    created = client.post(
        "/v1/single",
        json={
            "partner_id": site.partner_id,
            "title": f"{title} {secrets.token_hex(3)}",
            "language": "all_ALL",
            "is_all": True,
        },
        headers=site.auth,
    )
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["campaign_id"])
    launched = client.post(
        f"/v1/single/{campaign_id}",
        json={
            "partner_id": site.partner_id,
            "title": title,
            "description": "Everything 20% off until Sunday",
            "link": link,
            "ttl": 3600,
            "include_unengaged": True,
            **extra,
        },
        headers=site.auth,
    )
    assert launched.status_code == 200, launched.text
    launches = wait(lambda: ended(client, site, campaign_id), "the launch to be sent", timeout=60)
    assert [(entry["status"], entry["sent"]) for entry in launches] == [("Sent", 1)], launches
    received = sim.messages(sub)
    assert len(received) == 1, received
    plaintext = http_ece.decrypt(
        received[0].body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
    )
    return Launched(campaign_id, int(launches[0]["launch_id"]), plaintext.decode())


def ended(client: httpx.Client, site: Site, campaign_id: int) -> list[dict[str, Any]] | None:
    answer = client.get(f"/v1/single/{campaign_id}", headers=site.auth)
    assert answer.status_code == 200, answer.text
    launches: list[dict[str, Any]] = answer.json()["launches"]
    if launches and all(
        entry["status"] in ("Sent", "Paused", "Stopped", "Failed") for entry in launches
    ):
        return launches
    return None


def counters(client: httpx.Client, site: Site, campaign_id: int) -> dict[str, Any]:
    answer = client.get(f"/v1/single/{campaign_id}", headers=site.auth)
    assert answer.status_code == 200, answer.text
    (only,) = answer.json()["launches"]
    summary: dict[str, Any] = only
    return summary


T = TypeVar("T")


def wait(probe: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll ``probe`` until it returns something other than None/False; fail naming
    ``what`` after ``timeout`` seconds. (A bound on waiting, not a timing assertion.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


# -- the page and its service worker ---------------------------------------------------------

OUTCOME = "document.getElementById('log').dataset.outcome"


def open_demo(page: Page, site: Site, query: str = "") -> None:
    page.goto(site.demo(query))
    page.wait_for_function(OUTCOME)
    outcome = page.evaluate(OUTCOME)
    assert outcome == "ready", page.evaluate("document.getElementById('log').textContent")


def deliver(context: BrowserContext, page: Page, origin: str, scope_url: str, data: str) -> None:
    """Hand ``data`` to the worker registered for ``scope_url`` as its push service would:
    a ``push`` event, through DevTools (the registration's id comes from its events)."""
    cdp = context.new_cdp_session(page)
    found: list[str] = []

    def on_update(event: dict[str, Any]) -> None:
        for registration in event["registrations"]:
            if registration["scopeURL"] == scope_url and not registration["isDeleted"]:
                found.append(registration["registrationId"])

    cdp.on("ServiceWorker.workerRegistrationUpdated", on_update)
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 15
    while not found:
        assert time.monotonic() < deadline, f"no service worker registration for {scope_url}"
        page.wait_for_timeout(50)  # lets Playwright dispatch the DevTools events
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": found[0], "data": data},
    )
    cdp.detach()
