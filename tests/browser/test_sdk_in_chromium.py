"""The SDK and the service worker in a real browser (headless Chromium), against the real
server: what a subscriber's browser does, with no part of it faked.

Invariants: the SDK loads on a site without a console error, whatever happens; the worker
shows pushcamp's notification and reports it delivered with the push's signed token; a
forged token is shown to the user but counted nowhere; a browser that cannot subscribe
makes subscribe() reject with a reason instead of hanging or throwing.

Chromium here has no route to Google's push service, so no test subscribes for real:
pushes are handed to the worker with DevTools' ServiceWorker.deliverPushMessage, the same
event the browser raises when the push service delivers.
"""

from __future__ import annotations

import json
import secrets
import time

from sqlalchemy import select

from pushcamp.domain import event_tokens
from pushcamp.store import Database
from pushcamp.store.models import Event
from pushcamp.testing.process import ServerProcess
from tests.browser.cdp import Browser, Page
from tests.browser.conftest import Site
from tests.conftest import recorded_launch

OUTCOME = "document.getElementById('log').dataset.outcome"


def open_demo(page: Page, site: Site, query: str = "") -> None:
    page.goto(site.demo(query))
    outcome = page.wait_until(OUTCOME)
    log = page.evaluate("document.getElementById('log').textContent")
    assert outcome == "ready", log


def registration_id(browser: Browser, page: Page, site: Site) -> str:
    page.send("ServiceWorker.enable")
    scope = site.demo()

    def ours(event: dict) -> bool:  # type: ignore[type-arg]
        return any(
            r["scopeURL"] == scope and not r["isDeleted"] for r in event["params"]["registrations"]
        )

    event = browser.wait_for("ServiceWorker.workerRegistrationUpdated", ours)
    return next(
        r["registrationId"]
        for r in event["params"]["registrations"]
        if r["scopeURL"] == scope and not r["isDeleted"]
    )


def push(browser: Browser, page: Page, site: Site, payload: dict) -> None:  # type: ignore[type-arg]
    page.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": site.origin,
            "registrationId": registration_id(browser, page, site),
            "data": json.dumps(payload),
        },
    )


def shown_titles(page: Page, site: Site) -> list[str]:
    titles: list[str] = page.evaluate(
        f"navigator.serviceWorker.getRegistration({json.dumps(site.scope)})"
        ".then(r => r.getNotifications()).then(ns => ns.map(n => n.title))"
    )
    return titles


def events_for(db: Database, launch_id: int, subscriber_id: int) -> list[str]:
    with db.read() as conn:
        return list(
            conn.execute(
                select(Event.type).where(
                    Event.launch_id == launch_id, Event.subscriber_id == subscriber_id
                )
            ).scalars()
        )


def payload_for(site: Site, token: str, title: str) -> dict:  # type: ignore[type-arg]
    return {
        "title": title,
        "body": "Everything 20% off until Sunday",
        "icon": f"{site.origin}/favicon.ico",
        "url": site.demo("?from=push"),
        "token": token,
        "events_url": f"{site.origin}/v1/events",
        "tag": "launch-1",
    }


def test_demo_page_loads_the_sdk_without_errors_and_registers_the_worker(
    browser: Browser, page: Page, site: Site
) -> None:
    browser.send("Browser.resetPermissions")
    open_demo(page, site)
    state = page.evaluate(
        f"navigator.serviceWorker.getRegistration({json.dumps(site.scope)})"
        ".then(r => r && r.active && r.active.state)"
    )
    assert state == "activated"
    assert page.wait_until("document.getElementById('state').dataset.subscribed") == "false"
    assert page.evaluate("pushcamp.version") == "1"
    assert page.errors() == []


def test_unknown_partner_page_is_a_404_without_the_sdk(
    browser: Browser, page: Page, site: Site
) -> None:
    page.goto(f"{site.origin}/demo/nobody{secrets.token_hex(3)}")
    assert "No such partner" in page.evaluate("document.body.textContent")
    assert page.evaluate("typeof window.pushcamp") == "undefined"


def test_a_push_is_shown_and_reported_delivered(
    browser: Browser, page: Page, site: Site, db: Database
) -> None:
    browser.send(
        "Browser.grantPermissions", {"permissions": ["notifications"], "origin": site.origin}
    )
    open_demo(page, site)
    # Events count only for a real launch of the partner; any subscriber id will do.
    launch_id, subscriber_id = recorded_launch(db, site.partner_id), secrets.randbelow(10**9) + 1
    token = event_tokens.sign(
        site.signing_key, site.partner_id, launch_id, subscriber_id, int(time.time()) + 3600
    )
    push(browser, page, site, payload_for(site, token, "Summer sale"))

    deadline = time.monotonic() + 15
    while "delivered" not in events_for(db, launch_id, subscriber_id):
        assert time.monotonic() < deadline, "no delivered event reached the database"
        time.sleep(0.1)
    assert "Summer sale" in shown_titles(page, site)
    assert events_for(db, launch_id, subscriber_id) == ["delivered"]
    assert page.errors() == []


def test_a_forged_token_is_shown_but_refused_by_the_server(
    browser: Browser, page: Page, site: Site, db: Database, server: ServerProcess
) -> None:
    browser.send(
        "Browser.grantPermissions", {"permissions": ["notifications"], "origin": site.origin}
    )
    open_demo(page, site)
    launch_id, subscriber_id = secrets.randbelow(10**9) + 1, secrets.randbelow(10**9) + 1
    forged = event_tokens.sign(
        secrets.token_bytes(32), site.partner_id, launch_id, subscriber_id, int(time.time()) + 3600
    )
    refusals_before = refused_events(server)
    push(browser, page, site, payload_for(site, forged, "Forged sale"))

    deadline = time.monotonic() + 15
    while refused_events(server) == refusals_before:
        assert time.monotonic() < deadline, "the worker's report never reached the server"
        time.sleep(0.1)
    assert "Forged sale" in shown_titles(page, site)
    assert events_for(db, launch_id, subscriber_id) == []


def refused_events(server: ServerProcess) -> int:
    """How many POST /v1/events the server answered 400, from its access log."""
    count = 0
    for line in server.log_path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            entry.get("event") == "request"
            and entry.get("path") == "/v1/events"
            and entry.get("method") == "POST"
            and entry.get("status") == 400
        ):
            count += 1
    return count


def test_subscribe_rejects_cleanly_when_the_push_service_is_unreachable(
    browser: Browser, page: Page, site: Site
) -> None:
    browser.send(
        "Browser.grantPermissions", {"permissions": ["notifications"], "origin": site.origin}
    )
    open_demo(page, site, "?timeout=2000")
    page.evaluate("document.getElementById('subscribe').click()", user_gesture=True)
    outcome = page.wait_until(f"!['ready', 'pending'].includes({OUTCOME}) && {OUTCOME}")
    log = page.evaluate("document.getElementById('log').textContent")
    # Headless Chromium never hears back from Google's push service; a browser that
    # fails outright rejects with push-subscribe instead. Both are clean rejections.
    assert outcome in ("error:push-timeout", "error:push-subscribe"), log
    assert "failed (push-" in log
    assert page.wait_until("document.getElementById('state').dataset.subscribed") == "false"
    assert page.errors() == []
