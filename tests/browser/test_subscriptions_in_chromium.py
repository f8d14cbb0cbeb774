"""The SDK's subscription calls in headless Chromium: subscribe(), the visit ping,
unsubscribe(), and the worker's renewal on ``pushsubscriptionchange``.

What stands in for what: Chromium's push service is Google's, which headless Chromium here
cannot reach, so the page's ``PushManager`` is replaced before the page loads (STAND_IN) by
one that hands out a subscription the push-service simulator issued, with its real keys.
Everything else is real: the page, the SDK, the service worker, the Cache API between
them, CORS, pushcamp's server and database.

``pushsubscriptionchange`` cannot be raised in Chromium from outside (no DevTools command
does; Chromium fires it only when its push service renews a subscription), and a synthetic
event's ``waitUntil`` throws. So the test calls what the worker's listener calls,
``self.pushcamp.subscriptionChanged(oldSubscription, newSubscription)``, inside the real
worker, with the simulator's new subscription (docs/sdk.md says so).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, Worker
from sqlalchemy import select, update

from pushcamp.store import Database
from pushcamp.store.models import Subscriber
from pushcamp.testing.simulator import PushServiceSimulator, SimulatedSubscription
from tests.browser.conftest import OUTCOME, Site, open_demo, subscribe_at_simulator, wait

STAND_IN = """
(function (issued) {
  // Stands in for the browser's push service client: hands out the simulator's
  // subscription. Installed before the page's own scripts run.
  var current = issued.subscribed ? issued.subscription : null;
  function wrap(s, key) {
    return {
      endpoint: s.endpoint,
      expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: key || null },
      toJSON: function () {
        return { endpoint: s.endpoint, expirationTime: null, keys: s.keys };
      },
      unsubscribe: function () { current = null; return Promise.resolve(true); },
    };
  }
  PushManager.prototype.getSubscription = function () {
    return Promise.resolve(current ? wrap(current) : null);
  };
  PushManager.prototype.subscribe = function (options) {
    current = issued.subscription;
    return Promise.resolve(wrap(current, options && options.applicationServerKey));
  };
})(%s);
"""


def stand_in(page: Page, sub: SimulatedSubscription, *, subscribed: bool) -> None:
    issued = {"subscription": sub.to_json(), "subscribed": subscribed}
    page.add_init_script(script=STAND_IN % json.dumps(issued))


def row(db: Database, site: Site, endpoint: str) -> Any:
    with db.read() as conn:
        return conn.execute(
            select(Subscriber).where(
                Subscriber.partner_id == site.partner_id, Subscriber.endpoint == endpoint
            )
        ).one_or_none()


def worker_for(context: BrowserContext, page: Page, scope_url: str) -> Worker:
    """The running service worker whose registration's scope is ``scope_url``."""
    deadline = time.monotonic() + 15
    while True:
        for worker in context.service_workers:
            if worker.evaluate("self.registration.scope") == scope_url:
                return worker
        assert time.monotonic() < deadline, f"no service worker for {scope_url}"
        page.wait_for_timeout(50)


def test_subscribe_registers_the_subscription_with_language_zone_and_attributes(
    browser_context: BrowserContext,
    page: Page,
    console_errors: list[str],
    site: Site,
    sim: PushServiceSimulator,
    db: Database,
) -> None:
    browser_context.grant_permissions(["notifications"], origin=site.origin)
    sub = sim.subscribe()
    stand_in(page, sub, subscribed=False)
    open_demo(page, site)
    page.click("#subscribe")  # the demo's button: subscribe({attributes: {source: "demo"}})
    page.wait_for_function(f"{OUTCOME} !== 'pending' && {OUTCOME} !== 'ready'")
    assert page.evaluate(OUTCOME) == "subscribed", page.evaluate(
        "document.getElementById('log').textContent"
    )
    stored = row(db, site, sub.endpoint)
    assert stored is not None and stored.active
    assert stored.p256dh == sub.to_json()["keys"]["p256dh"]
    assert stored.language == page.evaluate("navigator.language").replace("-", "_")
    assert stored.timezone == page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert stored.attributes == {"source": "demo"}
    assert stored.browser == "HeadlessChrome"  # from the browser's own User-Agent
    assert console_errors == []


def test_the_visit_ping_refreshes_engagement(
    page: Page, site: Site, client: httpx.Client, sim: PushServiceSimulator, db: Database
) -> None:
    """A subscribed browser that loads a page of the site sends the visit ping."""
    page.context.grant_permissions(["notifications"], origin=site.origin)
    sub = subscribe_at_simulator(client, site, sim)
    long_ago = datetime.now(UTC) - timedelta(days=200)
    with db.write() as conn:
        conn.execute(
            update(Subscriber)
            .where(Subscriber.endpoint == sub.endpoint)
            .values(last_engaged_at=long_ago)
        )
    stand_in(page, sub, subscribed=True)
    open_demo(page, site)

    def engaged() -> datetime | None:
        found = row(db, site, sub.endpoint).last_engaged_at
        if found.tzinfo is None:  # SQLite keeps no offset; pushcamp stores UTC
            found = found.replace(tzinfo=UTC)
        return found if found > long_ago + timedelta(days=1) else None

    assert wait(engaged, "the visit ping") > datetime.now(UTC) - timedelta(minutes=5)


def test_unsubscribe_deactivates_the_subscription(
    page: Page, site: Site, client: httpx.Client, sim: PushServiceSimulator, db: Database
) -> None:
    page.context.grant_permissions(["notifications"], origin=site.origin)
    sub = subscribe_at_simulator(client, site, sim)
    stand_in(page, sub, subscribed=True)
    open_demo(page, site)
    page.click("#unsubscribe")
    page.wait_for_function(f"{OUTCOME} === 'unsubscribed' || {OUTCOME}.startsWith('error')")
    assert page.evaluate("document.getElementById('log').textContent").endswith("unsubscribed\n")
    stored = row(db, site, sub.endpoint)
    assert (stored.active, stored.deactivated_reason) == (False, "unsubscribed")
    assert page.evaluate("pushcamp.status().then(s => s.subscribed)") is False


def test_a_renewed_subscription_replaces_the_old_one_with_old_endpoint(
    browser_context: BrowserContext,
    page: Page,
    site: Site,
    client: httpx.Client,
    sim: PushServiceSimulator,
    db: Database,
) -> None:
    """The page left the partner, subscribe URL, key and endpoint in the Cache API; the
    worker, alone (no page involved), registers the new subscription with
    ``old_endpoint``: the old row becomes inactive "replaced", the new one active and
    inheriting the old one's attributes."""
    browser_context.grant_permissions(["notifications"], origin=site.origin)
    old = subscribe_at_simulator(client, site, sim, attributes={"plan": "gold"})
    stand_in(page, old, subscribed=True)
    open_demo(page, site)
    new = sim.subscribe()
    worker = worker_for(browser_context, page, site.demo())
    renew = """new_ => self.pushcamp
        .subscriptionChanged(null, {endpoint: new_.endpoint, toJSON: () => new_})
        .then(r => r === null ? 'no config' : 'done')"""
    # The SDK stores the worker's configuration right after start-up, without waiting.
    outcome = wait(
        lambda: (o := worker.evaluate(renew, new.to_json())) != "no config" and o,
        "the SDK's configuration in the Cache API",
    )
    assert outcome == "done"
    replaced, renewed = row(db, site, old.endpoint), row(db, site, new.endpoint)
    assert (replaced.active, replaced.deactivated_reason) == (False, "replaced")
    assert renewed is not None and renewed.active
    assert renewed.attributes == {"plan": "gold"}
