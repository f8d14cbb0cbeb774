"""The SDK and the service worker in a real browser (headless Chromium), against the real
server, with pushes made by real launches: what docs/sdk.md promises a subscriber's browser
does.

What is real here and what is not:

* the pushes: a campaign is launched through the HTTP API to a subscription the push-service
  simulator issued; the engine encrypts and signs it; the simulator receives it and the
  test decrypts it with http_ece. That exact plaintext (the engine's payload and signed
  token) is handed to the page's service worker with DevTools'
  ``ServiceWorker.deliverPushMessage``: the ``push`` event Chromium raises when its push
  service delivers. Chromium cannot subscribe here (its push service is Google's), so the
  push travels from the simulator to the browser by DevTools instead of by FCM.
* the clicks and closes: Chromium on Linux hands notifications to the desktop's
  notification server over D-Bus; the tests run one (desktop.py) and send its "clicked" /
  "dismissed" signals, so Chromium dispatches real, trusted ``notificationclick`` /
  ``notificationclose`` events, with the right to open or focus a window that a click
  gives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page
from sqlalchemy import select

from pushcamp.services import statistics
from pushcamp.store import Database
from pushcamp.store.models import Conversion, Event
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import PushServiceSimulator
from tests.browser.conftest import (
    OUTCOME,
    Launched,
    Site,
    counters,
    deliver,
    launch,
    open_demo,
    subscribe_at_simulator,
    wait,
)
from tests.browser.desktop import DesktopNotifications


def event_types(db: Database, launch_id: int) -> list[str]:
    with db.read() as conn:
        return sorted(
            conn.execute(select(Event.type).where(Event.launch_id == launch_id)).scalars()
        )


def event_posts(server: ServerProcess, status: int | None = None) -> int:
    """How many POST /v1/events the server answered (with ``status``), from its access log."""
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
            and (status is None or entry.get("status") == status)
        ):
            count += 1
    return count


def grant(context: BrowserContext, site: Site) -> None:
    context.grant_permissions(["notifications"], origin=site.origin)


def launched_to_page(
    context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    *,
    title: str,
    link: str,
    payload: dict[str, Any] | None = None,
) -> Launched:
    """A real launch to a simulator subscription of the site, its push handed to the
    page's worker (``payload`` replaces the received one when given)."""
    sub = subscribe_at_simulator(client, site, sim)
    launched = launch(client, site, sim, sub, title=title, link=link)
    data = launched.payload if payload is None else json.dumps(payload)
    deliver(context, page, site.origin, site.demo(), data)
    return launched


def test_demo_page_loads_the_sdk_without_errors_and_registers_the_worker(
    browser_context: BrowserContext, page: Page, console_errors: list[str], site: Site
) -> None:
    browser_context.clear_permissions()
    open_demo(page, site)
    state = page.evaluate(
        f"navigator.serviceWorker.getRegistration({json.dumps(site.scope)})"
        ".then(r => r && r.active && r.active.state)"
    )
    assert state == "activated"
    page.wait_for_function("document.getElementById('state').dataset.subscribed")
    assert page.evaluate("document.getElementById('state').dataset.subscribed") == "false"
    assert page.evaluate("pushcamp.version") == "1"
    assert console_errors == []


def test_unknown_partner_page_is_a_404_without_the_sdk(page: Page, site: Site) -> None:
    answer = page.goto(f"{site.origin}/demo/nobody{site.partner_id}")
    assert answer is not None and answer.status == 404
    assert "No such partner" in page.evaluate("document.body.textContent")
    assert page.evaluate("typeof window.pushcamp") == "undefined"


def test_a_launch_is_shown_and_reported_delivered_with_its_token(
    browser_context: BrowserContext,
    page: Page,
    console_errors: list[str],
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
    db: Database,
) -> None:
    grant(browser_context, site)
    open_demo(page, site)
    launched = launched_to_page(
        browser_context, page, site, client, sim, title="Summer sale", link=site.demo("?sale")
    )
    shown = desktop.wait_shown("Summer sale")
    assert shown.body.endswith("Everything 20% off until Sunday")
    wait(lambda: counters(client, site, launched.campaign_id)["delivered"] == 1, "delivered")
    assert event_types(db, launched.launch_id) == ["delivered"]
    assert console_errors == []


def test_a_click_opens_the_link_and_reports_clicked(
    browser_context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
    db: Database,
) -> None:
    grant(browser_context, site)
    open_demo(page, site)
    link = site.demo("?from=push")
    launched = launched_to_page(
        browser_context, page, site, client, sim, title="Click me", link=link
    )
    shown = desktop.wait_shown("Click me")
    with browser_context.expect_page() as opened:
        desktop.click(shown)
    assert opened.value.url == link
    wait(lambda: counters(client, site, launched.campaign_id)["clicks"] == 1, "the click")
    wait(lambda: shown.id in desktop.closed_by_browser(), "the worker to close it")
    assert event_types(db, launched.launch_id) == ["clicked", "delivered"]
    opened.value.close()


def test_a_click_focuses_a_window_already_showing_the_link(
    browser_context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
) -> None:
    """The link is already open in a window: the click reuses it (``WindowClient.focus``)
    instead of opening a second one. Headless Chromium under Playwright reports every
    window as focused and visible, so what is checked is that no window was opened."""
    grant(browser_context, site)
    link = site.demo("?already=open")
    page.goto(link)
    page.wait_for_function(OUTCOME)
    other = browser_context.new_page()  # a second window, where the push arrives
    open_demo(other, site)
    pages_before = list(browser_context.pages)
    launched = launched_to_page(
        browser_context, other, site, client, sim, title="Already open", link=link
    )
    desktop.click(desktop.wait_shown("Already open"))
    wait(lambda: counters(client, site, launched.campaign_id)["clicks"] == 1, "the click")
    # The worker finishes its click handler (focus, report) together: once the click is
    # counted, a window it opened would exist. None did.
    other.wait_for_timeout(500)
    assert browser_context.pages == pages_before
    other.close()


def test_dismissing_reports_closed(
    browser_context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
    db: Database,
) -> None:
    grant(browser_context, site)
    open_demo(page, site)
    launched = launched_to_page(
        browser_context, page, site, client, sim, title="Dismiss me", link=site.demo("?x")
    )
    pages_before = list(browser_context.pages)
    desktop.dismiss(desktop.wait_shown("Dismiss me"))
    wait(lambda: "closed" in event_types(db, launched.launch_id), "the closed event")
    assert event_types(db, launched.launch_id) == ["closed", "delivered"]
    assert counters(client, site, launched.campaign_id)["clicks"] == 0
    assert browser_context.pages == pages_before


@pytest.mark.parametrize(
    "link",
    [
        "javascript:fetch('/never-javascript')",
        "data:text/html,<script>fetch('http://127.0.0.1/never-data')</script>",
    ],
    ids=["javascript", "data"],
)
def test_javascript_and_data_links_are_never_opened(
    link: str,
    browser_context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
) -> None:
    """pushcamp refuses such links when a campaign is launched, so this push is one it did
    not build: a real launch's payload (its real signed token) with ``url`` replaced, as a
    tampered or foreign sender could make. The click opens the worker's scope instead."""
    grant(browser_context, site)
    open_demo(page, site, "?not-the-scope")  # so that the scope is opened, not focused
    sub = subscribe_at_simulator(client, site, sim)
    title = f"Bad link {site.partner_id}"
    launched = launch(client, site, sim, sub, title=title, link=site.demo("?ok"))
    tampered = {**launched.fields, "url": link}
    deliver(browser_context, page, site.origin, site.demo(), json.dumps(tampered))
    shown = desktop.wait_shown(title)
    with browser_context.expect_page() as opened:
        desktop.click(shown)
    assert opened.value.url == site.demo()  # the scope, never the link
    wait(lambda: counters(client, site, launched.campaign_id)["clicks"] == 1, "the click")
    urls = [p.url for p in browser_context.pages]
    assert not [u for u in urls if u.startswith(("javascript:", "data:"))], urls
    opened.value.close()


def test_a_push_that_is_not_pushcamps_is_ignored(
    browser_context: BrowserContext,
    page: Page,
    console_errors: list[str],
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
    server: ServerProcess,
) -> None:
    """Pushes from another sender sharing the worker (plain text; another service's JSON,
    even one with a token) show nothing and post nothing. A pushcamp launch delivered after
    them shows that the worker did handle the earlier pushes (events are handled in order)."""
    grant(browser_context, site)
    open_demo(page, site)
    sub = subscribe_at_simulator(client, site, sim)
    launched = launch(client, site, sim, sub, title="After the others", link=site.demo())
    events_before = event_posts(server)
    shown_before = len(desktop.shown())
    for foreign in (
        "just text",
        json.dumps({"notification": {"title": "Another service", "body": "hello"}}),
        json.dumps(
            {
                "body": "no title",
                "token": launched.fields["token"],
                "events_url": launched.fields["events_url"],
            }
        ),
    ):
        deliver(browser_context, page, site.origin, site.demo(), foreign)
    deliver(browser_context, page, site.origin, site.demo(), launched.payload)
    desktop.wait_shown("After the others")
    wait(lambda: counters(client, site, launched.campaign_id)["delivered"] == 1, "delivered")
    assert [s.title for s in desktop.shown()[shown_before:]] == ["After the others"]
    assert event_posts(server) == events_before + 1  # the pushcamp push's delivered, only
    assert console_errors == []


def test_an_altered_token_is_shown_but_counted_nowhere(
    browser_context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
    server: ServerProcess,
    db: Database,
) -> None:
    """A real launch's payload whose signed token had one character of its signature
    changed: the worker shows it and reports it; the server refuses the report."""
    grant(browser_context, site)
    open_demo(page, site)
    sub = subscribe_at_simulator(client, site, sim)
    launched = launch(client, site, sim, sub, title="Altered", link=site.demo())
    token: str = launched.fields["token"]
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    refused_before = event_posts(server, 400)
    deliver(
        browser_context,
        page,
        site.origin,
        site.demo(),
        json.dumps({**launched.fields, "token": altered}),
    )
    desktop.wait_shown("Altered")
    wait(lambda: event_posts(server, 400) > refused_before, "the refused report")
    assert event_types(db, launched.launch_id) == []


def test_subscribe_rejects_cleanly_when_the_push_service_is_unreachable(
    browser_context: BrowserContext, page: Page, console_errors: list[str], site: Site
) -> None:
    grant(browser_context, site)
    open_demo(page, site, "?timeout=2000")
    page.click("#subscribe")  # a real click: the user gesture the permission prompt needs
    page.wait_for_function(f"!['ready', 'pending'].includes({OUTCOME})", timeout=30_000)
    outcome = page.evaluate(OUTCOME)
    log = page.evaluate("document.getElementById('log').textContent")
    # Headless Chromium never hears back from Google's push service; a browser that
    # fails outright rejects with push-subscribe instead. Both are clean rejections.
    assert outcome in ("error:push-timeout", "error:push-subscribe"), log
    assert "failed (push-" in log
    assert page.evaluate("document.getElementById('state').dataset.subscribed") == "false"
    assert console_errors == []


def conversions_of(db: Database, launch_id: int) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        rows = conn.execute(
            select(Conversion.order_id, Conversion.value, Conversion.currency).where(
                Conversion.launch_id == launch_id
            )
        ).all()
    return [(order, float(str(value)), currency) for order, value, currency in rows]


def test_a_conversion_after_a_click_is_attributed_to_the_launch(
    browser_context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
    db: Database,
) -> None:
    """A real launch, delivered and clicked; on the page the click opened (the partner's
    site), ``pushcamp.conversion()`` reports the purchase with the click's token, which the
    worker kept: stored once per order, and counted in the campaign's statistics."""
    statistics.set_conversion_settings(db, site.partner_id, currency="EUR")
    grant(browser_context, site)
    open_demo(page, site)
    assert page.evaluate("pushcamp.conversion({value: 1, currency: 'EUR'})") is False
    link = site.demo("?from=push")
    launched = launched_to_page(
        browser_context, page, site, client, sim, title="Buy now", link=link
    )
    with browser_context.expect_page() as opened:
        desktop.click(desktop.wait_shown("Buy now"))
    shop = opened.value
    wait(lambda: counters(client, site, launched.campaign_id)["clicks"] == 1, "the click")
    shop.wait_for_function(OUTCOME)
    bought = "args => pushcamp.conversion(args).then(r => r, e => e.code + ': ' + e.message)"
    order = {"value": 49.9, "currency": "EUR", "order_id": "A1"}
    assert shop.evaluate(bought, order) is True
    assert conversions_of(db, launched.launch_id) == [("A1", 49.9, "EUR")]
    again = shop.evaluate(bought, order)  # the same order reported twice counts once
    assert isinstance(again, str) and again.startswith("server: pushcamp refused"), again
    assert shop.evaluate(bought, {"value": -1, "currency": "EUR"}).startswith("invalid:")
    assert shop.evaluate(bought, {"value": 5, "currency": "eur"}).startswith("invalid:")
    assert conversions_of(db, launched.launch_id) == [("A1", 49.9, "EUR")]

    today = datetime.now(UTC).date().isoformat()
    metrics = client.post(
        "/v1/statistics/campaign-metrics",
        json={
            "partner_id": site.partner_id,
            "campaign_id": launched.campaign_id,
            "start_date": today,
            "end_date": today,
        },
        headers=site.auth,
    )
    assert metrics.status_code == 200, metrics.text
    assert metrics.json()["overview"]["conversionRate"]["conversions"] == "1"
    shop.close()
