"""Panel fixtures: signing in over HTTP and in Chromium, a partner with a launched
campaign whose numbers are real (sent by the engine to the push-service simulator,
delivered and clicked through the public events endpoint with the tokens the pushes
carried), and a launch held in Sending by a slow push service."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import Fault, PushServiceSimulator, SimulatedSubscription
from tests.conftest import Tenant
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    wait_for_launches,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def fake_address() -> str:
    """A client address of its own (the server trusts X-Forwarded-For from 127.0.0.1), so
    that sign-ins of different tests never share a sign-in budget."""
    return "10." + ".".join(str(b) for b in secrets.token_bytes(3))


@contextmanager
def sign_in(
    server: ServerProcess, token: str, address: str | None = None
) -> Iterator[httpx.Client]:
    """A client with a panel session opened with ``token``."""
    with httpx.Client(
        base_url=server.url,
        timeout=30,
        headers={"X-Forwarded-For": address or fake_address()},
    ) as client:
        answer = client.post("/panel/login", data={"token": token})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/panel/campaigns"
        yield client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF field in the page"
    return found.group(1)


@dataclass
class Launched:
    tenant: Tenant
    campaign_id: int
    title: str
    subscribers: int
    delivered: int
    clicked: int


@pytest.fixture(scope="module")
def panel_sim() -> Iterator[PushServiceSimulator]:
    with PushServiceSimulator(seed=11) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def launched(db: Database, server: ServerProcess, panel_sim: PushServiceSimulator) -> Launched:
    """A partner with 6 subscribers and one launched ``is_all`` campaign: 6 sent, 4
    delivered, 2 clicked."""
    tenant = Tenant(db, v1_limit=10_000)
    subs = add_subscribers(
        db, tenant.partner_id, panel_sim, 6, language="en_US", browser="Chrome", device="desktop"
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        campaign_id = create_campaign(client, tenant)
        title = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()["title"]
        answer = client.post(
            f"/v1/single/{campaign_id}",
            json=launch_body(
                tenant.partner_id,
                title="Summer sale <b>now</b>",
                description="20% off & free shipping",
            ),
            headers=tenant.auth,
        )
        assert answer.status_code == 200, answer.text
        [launch] = wait_for_launches(client, tenant, campaign_id)
        assert launch["sent"] == 6, launch
        for i, sub in enumerate(subs[:4]):
            [message] = panel_sim.messages(sub)
            token = json.loads(message.text)["token"]
            kinds = ["delivered", "clicked"] if i < 2 else ["delivered"]
            for kind in kinds:
                event = client.post("/v1/events", json={"type": kind, "token": token})
                assert event.status_code in (200, 201, 204), event.text
    return Launched(tenant, campaign_id, title, 6, 4, 2)


# --- a launch that stays in Sending ------------------------------------------------------

# The engine commits outcomes every 500 answers or once the oldest has waited half a second
# (EngineOptions.record_every, record_seconds): with 101 subscribers, the first 100
# answers are committed while the last one is still held back.
FAST = 100


@dataclass
class Sending:
    tenant: Tenant
    campaign_id: int
    subs: list[SimulatedSubscription]  # the FAST ones, answered at once


def start_held_launch(
    db: Database, server: ServerProcess, sim: PushServiceSimulator, hold_seconds: float
) -> Sending:
    """Launch a campaign to 101 subscribers, one of which the push service answers 503
    with ``Retry-After: hold_seconds`` (then 201): the engine retries it no sooner, so the
    launch stays in Sending that long. Returns once the first 100 outcomes are committed
    (§2.5 shows ``sent`` 100 and status Sending)."""
    tenant = Tenant(db, v1_limit=10_000)
    subs = add_subscribers(
        db, tenant.partner_id, sim, FAST + 1, language="en_US", browser="Chrome", device="desktop"
    )
    sim.inject(subs[-1], Fault.unavailable(retry_after=hold_seconds))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        campaign_id = create_campaign(client, tenant)
        answer = client.post(
            f"/v1/single/{campaign_id}",
            json=launch_body(tenant.partner_id, title="Flash sale", description="Two hours only"),
            headers=tenant.auth,
        )
        assert answer.status_code == 200, answer.text
        deadline = time.monotonic() + 60
        while True:
            status = client.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()
            [launch] = status["launches"] or [{"status": "Queued", "sent": 0}]
            if launch["sent"] >= FAST:
                break
            assert launch["status"] in ("Queued", "Sending"), launch
            assert time.monotonic() < deadline, f"the first {FAST} were not recorded: {launch}"
            time.sleep(0.1)
        assert (status["status"], launch["status"], launch["sent"]) == ("Sending", "Sending", FAST)
    return Sending(tenant, campaign_id, subs[:FAST])


def report_events(
    server: ServerProcess,
    sim: PushServiceSimulator,
    subs: Sequence[SimulatedSubscription],
    kind: str,
) -> None:
    """What each subscriber's service worker does: POST the event with the token its push
    carried."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for sub in subs:
            [message] = sim.messages(sub)
            token = json.loads(message.text)["token"]
            answer = client.post("/v1/events", json={"type": kind, "token": token})
            assert answer.status_code in (200, 201, 204), answer.text


# --- Chromium ------------------------------------------------------------------------------

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    reason = "Debian's chromium is not installed (./test installs it with apt-get as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PUSHCAMP_TEST_ARTIFACTS") or tmp_path) / "panel"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def new_page(browser: Browser, server: ServerProcess, width: int = 1280, **options: Any) -> Page:
    context = browser.new_context(
        base_url=server.url,
        viewport={"width": width, "height": 900},
        # A client address of its own: the sign-in budget is per address.
        extra_http_headers={"X-Forwarded-For": fake_address()},
        **options,
    )
    return context.new_page()


def sign_in_page(page: Page, token: str) -> None:
    page.goto("/panel/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url("**/panel/campaigns")
