"""The SDK on a partner's own site, another origin than pushcamp's: the two lines in a page
and the one-line worker that imports pushcamp's, as docs/sdk.md tells partners to do.

Invariants: with the site's origin declared (partners set-site) the SDK starts and the
worker's cross-origin delivery report is counted; on a site that is not declared the SDK
is refused by CORS yet throws nothing on the page, and reports the reason when called.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from pushcamp.domain import event_tokens
from pushcamp.services import partners, sites
from pushcamp.store import Database
from pushcamp.store.models import Event
from pushcamp.store.partners import get_site_settings
from pushcamp.testing.process import ServerProcess
from tests.browser.cdp import Browser, Page
from tests.conftest import recorded_launch

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


def new_partner(db: Database, origins: list[str]) -> tuple[str, bytes]:
    partner_id = f"s{secrets.token_hex(6)}"
    partners.create_partner(db, partner_id, "shop")
    if origins:
        sites.set_site_origins(db, partner_id, origins)
    with db.read() as conn:
        found = get_site_settings(conn, partner_id)
    assert found is not None
    return partner_id, found.signing_key


def open_shop(page: Page, shop: PartnerSite, partner_id: str) -> str:
    page.goto(f"{shop.origin}/shop/{partner_id}")
    outcome: str = page.wait_until("document.getElementById('out').textContent")
    return outcome


def test_declared_site_subscribes_through_its_own_worker_and_reports_deliveries(
    browser: Browser, page: Page, shop: PartnerSite, db: Database
) -> None:
    partner_id, key = new_partner(db, [shop.origin])
    browser.send(
        "Browser.grantPermissions", {"permissions": ["notifications"], "origin": shop.origin}
    )
    assert open_shop(page, shop, partner_id) == "ready"
    assert page.errors() == []

    page.send("ServiceWorker.enable")
    scope = f"{shop.origin}/"
    event = browser.wait_for(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: any(r["scopeURL"] == scope for r in e["params"]["registrations"]),
    )
    registration = next(
        r["registrationId"] for r in event["params"]["registrations"] if r["scopeURL"] == scope
    )
    # Events count only for a real launch of the partner; any subscriber id will do.
    launch_id, subscriber_id = recorded_launch(db, partner_id), secrets.randbelow(10**9) + 1
    token = event_tokens.sign(key, partner_id, launch_id, subscriber_id, int(time.time()) + 60)
    payload = {
        "title": "From the shop",
        "body": "",
        "url": f"{shop.origin}/shop/{partner_id}",
        "token": token,
        "events_url": f"{page_server_url(page)}/v1/events",
    }
    page.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": shop.origin, "registrationId": registration, "data": json.dumps(payload)},
    )
    deadline = time.monotonic() + 15
    while True:
        with db.read() as conn:
            types = list(
                conn.execute(
                    select(Event.type).where(
                        Event.launch_id == launch_id, Event.subscriber_id == subscriber_id
                    )
                ).scalars()
            )
        if types:
            break
        assert time.monotonic() < deadline, "the cross-origin delivered report was not counted"
        time.sleep(0.1)
    assert types == ["delivered"]


def page_server_url(page: Page) -> str:
    """pushcamp's URL, as the SDK on the page found it."""
    src: str = page.evaluate("document.querySelector('script[data-partner]').src")
    return src.removesuffix("/sdk/pushcamp.js")


def test_undeclared_site_is_refused_without_an_error_on_the_page(
    browser: Browser, page: Page, shop: PartnerSite, db: Database
) -> None:
    partner_id, _key = new_partner(db, [])
    assert open_shop(page, shop, partner_id) == "error:network"
    # The browser logs the refused CORS request itself; the SDK adds no error of its own.
    browser_own = [
        e
        for e in page.errors()
        if not (e.startswith("log (network)") or "blocked by CORS policy" in e)
    ]
    assert browser_own == []
    failure = page.evaluate(
        "pushcamp.subscribe().then(() => 'subscribed', e => e.name + ' ' + e.code)",
        user_gesture=True,
    )
    assert failure == "PushcampError network"


def test_a_failed_start_is_tried_again_by_the_next_call(
    browser: Browser, page: Page, shop: PartnerSite, db: Database
) -> None:
    """The site is declared only after the page loaded (as when pushcamp was unreachable
    for a moment): the next call starts the SDK again instead of failing until a reload."""
    partner_id, _key = new_partner(db, [])
    assert open_shop(page, shop, partner_id) == "error:network"
    sites.set_site_origins(db, partner_id, [shop.origin])
    time.sleep(2.5)  # the server trusts its cached site settings for 2 s
    outcome = page.evaluate(
        "pushcamp.status().then(s => 'supported:' + s.supported, e => 'error:' + e.code)"
    )
    assert outcome == "supported:true"
    assert page.evaluate("pushcamp.ready.then(() => 'ready', e => 'error:' + e.code)") == "ready"
