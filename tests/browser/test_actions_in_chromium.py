"""Richer notifications in a real browser (headless Chromium): a launch with two action
buttons, a badge, ``require_interaction``, ``renotify`` and ``silent``, made through the
HTTP API, received by the push-service simulator, decrypted with http_ece and handed to
the demo page's service worker with DevTools' ``ServiceWorker.deliverPushMessage`` (as in
test_sdk_in_chromium.py). Chromium shows it through the tests' own desktop notification
server (desktop.py), which sees the buttons, and the button clicks are that server's
``ActionInvoked`` signals: what a desktop sends when a person clicks a button."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page
from sqlalchemy import select

from pushcamp.store import Database
from pushcamp.store.models import Event
from pushcamp.testing.simulator import PushServiceSimulator
from tests.browser.conftest import (
    Launched,
    Site,
    counters,
    deliver,
    launch,
    open_demo,
    subscribe_at_simulator,
    wait,
)
from tests.browser.desktop import DesktopNotifications, Shown

BADGE = "https://cdn.example.com/badge.png"


def clicks(db: Database, launch_id: int) -> list[tuple[str, int | None]]:
    with db.read() as conn:
        rows = conn.execute(
            select(Event.type, Event.action).where(
                Event.launch_id == launch_id, Event.type == "clicked"
            )
        ).all()
    return [(kind, action) for kind, action in rows]


def notifications_of(page: Page, site: Site) -> list[dict[str, Any]]:
    """What the service worker's registration reports of its notifications shown now:
    ``ServiceWorkerRegistration.getNotifications()``, Chromium's own account of the
    options ``showNotification`` was given."""
    found: list[dict[str, Any]] = page.evaluate(
        """scope => navigator.serviceWorker.getRegistration(scope)
            .then(r => r.getNotifications())
            .then(list => list.map(n => ({
                title: n.title, tag: n.tag, badge: n.badge, silent: n.silent,
                renotify: n.renotify, requireInteraction: n.requireInteraction,
                actions: n.actions.map(a => ({action: a.action, title: a.title})),
            })))""",
        site.scope,
    )
    return found


def launch_to_page(
    context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    title: str,
    **extra: Any,
) -> Launched:
    context.grant_permissions(["notifications"], origin=site.origin)
    open_demo(page, site)
    sub = subscribe_at_simulator(client, site, sim)
    launched = launch(client, site, sim, sub, title=title, link=site.demo("?main"), **extra)
    deliver(context, page, site.origin, site.demo(), launched.payload)
    return launched


def two_buttons(site: Site) -> list[dict[str, str]]:
    return [
        {"title": "Shop now", "link": site.demo("?button=0")},
        {"title": "Remind me", "link": site.demo("?button=1")},
    ]


RICH = {"badge": BADGE, "require_interaction": True, "renotify": True, "silent": True}


def buttons_shown(shown: Shown) -> list[tuple[str, str]]:
    """The (key, label) pairs Chromium gave the desktop, but for its own two."""
    pairs = list(zip(shown.actions[::2], shown.actions[1::2], strict=True))
    return [pair for pair in pairs if pair[0] not in ("default", "settings")]


@pytest.mark.parametrize("button", [0, 1, None], ids=["button-0", "button-1", "body"])
def test_two_buttons_are_shown_and_a_click_opens_that_buttons_link(
    button: int | None,
    browser_context: BrowserContext,
    page: Page,
    console_errors: list[str],
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
    db: Database,
) -> None:
    title = f"Two buttons {button}"
    launched = launch_to_page(
        browser_context, page, site, client, sim, title, actions=two_buttons(site), **RICH
    )
    # What the push carried, as decrypted with http_ece.
    assert launched.fields["actions"] == [
        {"title": "Shop now", "url": site.demo("?button=0")},
        {"title": "Remind me", "url": site.demo("?button=1")},
    ]
    shown = desktop.wait_shown(title)
    assert buttons_shown(shown) == [("0", "Shop now"), ("1", "Remind me")]
    # require_interaction and silent as the desktop is asked for them: a notification
    # that never expires on its own, at critical urgency, without a sound.
    assert shown.expire_timeout == 0
    assert shown.hints.get("urgency") == 2
    assert shown.hints.get("suppress-sound") is True
    assert notifications_of(page, site) == [
        {
            "title": title,
            "tag": launched.fields["tag"],
            "badge": BADGE,
            "silent": True,
            "renotify": True,
            "requireInteraction": True,
            "actions": [
                {"action": "0", "title": "Shop now"},
                {"action": "1", "title": "Remind me"},
            ],
        }
    ]
    with browser_context.expect_page() as opened:
        if button is None:
            desktop.click(shown)
        else:
            desktop.click_action(shown, str(button))
    expected = site.demo("?main") if button is None else site.demo(f"?button={button}")
    assert opened.value.url == expected
    wait(lambda: counters(client, site, launched.campaign_id)["clicks"] == 1, "the click")
    assert clicks(db, launched.launch_id) == [("clicked", button)]
    wait(lambda: shown.id in desktop.closed_by_browser(), "the worker to close it")
    assert console_errors == []
    opened.value.close()


def test_without_the_extensions_the_notification_is_as_before(
    browser_context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
) -> None:
    """The other side of the test above: a launch without them shows no buttons, makes a
    sound, expires as the desktop decides, and reads back with every option off."""
    launched = launch_to_page(browser_context, page, site, client, sim, "Plain one")
    assert not {"actions", "badge", "require_interaction", "renotify", "silent"} & set(
        launched.fields
    )
    shown = desktop.wait_shown("Plain one")
    assert buttons_shown(shown) == []
    assert shown.expire_timeout != 0
    assert shown.hints.get("urgency") != 2
    assert not shown.hints.get("suppress-sound")
    assert notifications_of(page, site) == [
        {
            "title": "Plain one",
            "tag": launched.fields["tag"],
            "badge": "",
            "silent": False,
            "renotify": False,
            "requireInteraction": False,
            "actions": [],
        }
    ]
    desktop.dismiss(shown)


@pytest.mark.parametrize(
    "link",
    [
        "javascript:fetch('/never-javascript')",
        "data:text/html,<script>fetch('http://127.0.0.1/never-data')</script>",
    ],
    ids=["javascript", "data"],
)
def test_a_buttons_javascript_or_data_link_is_never_opened(
    link: str,
    browser_context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
    db: Database,
) -> None:
    """pushcamp refuses such links at launch; this push is a real launch's payload (its
    real signed token) with the button's link replaced, as a foreign sender could make.
    The worker applies the main link's rule: the click opens the worker's scope."""
    browser_context.grant_permissions(["notifications"], origin=site.origin)
    open_demo(page, site, "?not-the-scope")  # so that the scope is opened, not focused
    sub = subscribe_at_simulator(client, site, sim)
    title = f"Bad button {site.partner_id}"
    launched = launch(
        client, site, sim, sub, title=title, link=site.demo("?ok"), actions=two_buttons(site)
    )
    actions = launched.fields["actions"]
    tampered = {**launched.fields, "actions": [actions[0], {**actions[1], "url": link}]}
    deliver(browser_context, page, site.origin, site.demo(), json.dumps(tampered))
    shown = desktop.wait_shown(title)
    assert buttons_shown(shown) == [("0", "Shop now"), ("1", "Remind me")]
    with browser_context.expect_page() as opened:
        desktop.click_action(shown, "1")
    assert opened.value.url == site.demo()  # the scope, never the link
    wait(lambda: counters(client, site, launched.campaign_id)["clicks"] == 1, "the click")
    assert clicks(db, launched.launch_id) == [("clicked", 1)]
    urls = [p.url for p in browser_context.pages]
    assert not [u for u in urls if u.startswith(("javascript:", "data:"))], urls
    opened.value.close()
