"""The SDK on a partner's own site, another origin than pushcamp's: the two lines in a page
and the one-line worker that imports pushcamp's, as docs/sdk.md tells partners to do.

Invariants: with the site's origin declared (partners set-site) the SDK starts and the
worker's cross-origin delivery report is counted; on a site that is not declared the SDK
is refused by CORS yet throws nothing on the page, and reports the reason when called.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from pushcamp.services import partners, sites, tokens
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import PushServiceSimulator
from tests.browser.conftest import Site, counters, deliver, launch, subscribe_at_simulator, wait
from tests.browser.desktop import DesktopNotifications

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script src="{pushcamp}/sdk/pushcamp.js" data-partner="{partner}" async></script>
</head><body><p id="out"></p>
<script>
  window.addEventListener("load", function () {{
    pushcamp.ready.then(
      function () {{ document.getElementById("out").textContent = "ready"; }},
      function (e) {{ document.getElementById("out").textContent = "error:" + e.code; }});
  }});
</script></body></html>
"""


class PartnerSite:
    """A shop's web server: one page per partner, and /pushcamp-sw.js importing pushcamp's
    worker. Reached as http://localhost:PORT, another origin than pushcamp's 127.0.0.1."""

    def __init__(self, pushcamp_url: str) -> None:
        pushcamp = pushcamp_url

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path == "/pushcamp-sw.js":
                    body = f'importScripts("{pushcamp}/sdk/pushcamp-sw.js");\n'
                    kind = "text/javascript"
                elif self.path.startswith("/shop/"):
                    partner = self.path.removeprefix("/shop/")
                    body = PAGE.format(pushcamp=pushcamp, partner=partner)
                    kind = "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://localhost:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def shop(server: ServerProcess) -> Iterator[PartnerSite]:
    s = PartnerSite(server.url)
    try:
        yield s
    finally:
        s.close()


def new_partner(db: Database, server: ServerProcess, origins: list[str]) -> Site:
    partner_id = f"s{secrets.token_hex(6)}"
    partners.create_partner(db, partner_id, "shop", 10_000, 10_000)
    if origins:
        sites.set_site_origins(db, partner_id, origins)
    return Site(partner_id, server.url, tokens.create_token(db, partner_id))


def open_shop(page: Page, shop: PartnerSite, partner_id: str) -> str:
    page.goto(f"{shop.origin}/shop/{partner_id}")
    page.wait_for_function("document.getElementById('out').textContent")
    outcome: str = page.evaluate("document.getElementById('out').textContent")
    return outcome


def test_declared_site_shows_a_launch_through_its_own_worker_and_reports_it(
    browser_context: BrowserContext,
    page: Page,
    console_errors: list[str],
    shop: PartnerSite,
    db: Database,
    server: ServerProcess,
    client: httpx.Client,
    sim: PushServiceSimulator,
    desktop: DesktopNotifications,
) -> None:
    """The shop's one-line worker imports pushcamp's; a real launch's push is shown on the
    shop's origin and its cross-origin delivered and clicked reports are counted."""
    site = new_partner(db, server, [shop.origin])
    browser_context.grant_permissions(["notifications"], origin=shop.origin)
    assert open_shop(page, shop, site.partner_id) == "ready"
    assert console_errors == []

    sub = subscribe_at_simulator(client, site, sim)
    title = f"From the shop {site.partner_id}"
    link = f"{shop.origin}/shop/{site.partner_id}?from=push"
    launched = launch(client, site, sim, sub, title=title, link=link)
    deliver(browser_context, page, shop.origin, f"{shop.origin}/", launched.payload)
    shown = desktop.wait_shown(title)
    wait(lambda: counters(client, site, launched.campaign_id)["delivered"] == 1, "delivered")
    with browser_context.expect_page() as opened:
        desktop.click(shown)
    assert opened.value.url == link
    wait(lambda: counters(client, site, launched.campaign_id)["clicks"] == 1, "the click")
    opened.value.close()


def test_undeclared_site_is_refused_without_an_error_on_the_page(
    page: Page, console_errors: list[str], shop: PartnerSite, db: Database, server: ServerProcess
) -> None:
    site = new_partner(db, server, [])
    assert open_shop(page, shop, site.partner_id) == "error:network"
    # The browser logs the refused CORS request itself; the SDK adds no error of its own.
    browser_own = [
        e
        for e in console_errors
        if not ("blocked by CORS policy" in e or "Failed to load resource" in e)
    ]
    assert browser_own == []
    failure = page.evaluate(
        "pushcamp.subscribe().then(() => 'subscribed', e => e.name + ' ' + e.code)"
    )
    assert failure == "PushcampError network"


def test_a_failed_start_is_tried_again_by_the_next_call(
    page: Page, shop: PartnerSite, db: Database, server: ServerProcess
) -> None:
    """The site is declared only after the page loaded (as when pushcamp was unreachable
    for a moment): the next call starts the SDK again instead of failing until a reload."""
    site = new_partner(db, server, [])
    assert open_shop(page, shop, site.partner_id) == "error:network"
    sites.set_site_origins(db, site.partner_id, [shop.origin])
    time.sleep(2.5)  # the server trusts its cached site settings for 2 s
    outcome = page.evaluate(
        "pushcamp.status().then(s => 'supported:' + s.supported, e => 'error:' + e.code)"
    )
    assert outcome == "supported:true"
    assert page.evaluate("pushcamp.ready.then(() => 'ready', e => 'error:' + e.code)") == "ready"
