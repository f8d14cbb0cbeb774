"""Live progress on the campaign page while a launch sends, against the real server and a
push service that holds one message back (503 with Retry-After), so the launch stays in
Sending while the test watches.

Invariants: with JavaScript, the page's own polling brings the numbers of the moment
into the page without reloading it, and the page reloads itself once the launch ends;
without JavaScript the page shows the numbers of the moment and refreshes itself; the
progress JSON says what ``GET /v1/single/{id}`` says, and only to its own partner.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import PushServiceSimulator
from tests.conftest import Tenant
from tests.panel.conftest import (
    FAST,
    Launched,
    new_page,
    report_events,
    sign_in,
    sign_in_page,
    start_held_launch,
)

# Long enough for each test's checks while sending; the launch ends on its own after it.
HOLD_SECONDS = 20


def tile(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f".tiles [data-field={name}]")


def test_the_campaign_page_updates_itself_while_the_launch_sends(
    chromium: Browser,
    server: ServerProcess,
    db: Database,
    panel_sim: PushServiceSimulator,
    artifacts: Path,
) -> None:
    sending = start_held_launch(db, server, panel_sim, HOLD_SECONDS)
    page = new_page(chromium, server)
    sign_in_page(page, sending.tenant.token)
    page.goto(f"/panel/campaigns/{sending.campaign_id}")
    expect(page.locator(".heading .status")).to_have_text("Sending")
    expect(page.locator("#sending")).to_be_visible()
    expect(tile(page, "sent")).to_have_text(str(FAST))
    expect(tile(page, "delivered")).to_have_text("0")
    expect(tile(page, "clicks")).to_have_text("0")
    # A mark in this document: a reload (by anyone) would wipe it.
    page.evaluate("window.sameDocument = true")
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))

    # Service workers report deliveries and clicks; the page follows by itself.
    report_events(server, panel_sim, sending.subs[:40], "delivered")
    report_events(server, panel_sim, sending.subs[:10], "clicked")
    expect(tile(page, "delivered")).to_have_text("40", timeout=20_000)
    expect(tile(page, "clicks")).to_have_text("10", timeout=20_000)
    expect(page.locator("[data-live=delivery-rate]")).to_have_text("40.00% of sent")
    expect(page.locator("[data-live=ctr]")).to_have_text("CTR 25.00%")
    page.screenshot(path=artifacts / "campaign-sending.png", full_page=True)
    assert page.evaluate("window.sameDocument") is True
    assert loads == []
    # ...and it was still sending: the updates came from the polling, not from the end.
    progress = page.request.get(f"/panel/campaigns/{sending.campaign_id}/progress").json()
    assert progress["sending"] is True and progress["sent"] == FAST, progress

    # When the held message is answered the launch ends, and the page reloads itself to
    # show the finished campaign (its chart and breakdowns).
    expect(page.locator(".heading .status")).to_have_text(
        "Sent", timeout=(HOLD_SECONDS + 30) * 1000
    )
    expect(tile(page, "sent")).to_have_text(str(FAST + 1))
    expect(page.locator("#sending")).to_have_count(0)
    assert loads, "the page did not reload itself"
    assert page.evaluate("window.sameDocument") is None
    page.context.close()


def test_without_javascript_the_page_shows_the_moment_and_refreshes_itself(
    chromium: Browser,
    server: ServerProcess,
    db: Database,
    panel_sim: PushServiceSimulator,
    artifacts: Path,
) -> None:
    sending = start_held_launch(db, server, panel_sim, HOLD_SECONDS)
    report_events(server, panel_sim, sending.subs[:30], "delivered")
    page = new_page(chromium, server, java_script_enabled=False)
    sign_in_page(page, sending.tenant.token)
    page.goto(f"/panel/campaigns/{sending.campaign_id}")
    # The numbers of the moment, in the HTML itself.
    expect(page.locator(".heading .status")).to_have_text("Sending")
    expect(tile(page, "sent")).to_have_text(str(FAST))
    expect(tile(page, "delivered")).to_have_text("30")
    expect(tile(page, "clicks")).to_have_text("0")
    page.screenshot(path=artifacts / "campaign-sending-no-javascript.png", full_page=True)

    # More events arrive; the test does not reload: the page does (<noscript> refresh).
    report_events(server, panel_sim, sending.subs[30:50], "delivered")
    report_events(server, panel_sim, sending.subs[:5], "clicked")
    with page.expect_event("load", timeout=20_000):
        pass
    expect(tile(page, "delivered")).to_have_text("50")
    expect(tile(page, "clicks")).to_have_text("5")
    page.context.close()


def test_the_progress_json_says_what_the_status_endpoint_says(
    server: ServerProcess,
    db: Database,
    panel_sim: PushServiceSimulator,
    launched: Launched,
) -> None:
    sending = start_held_launch(db, server, panel_sim, HOLD_SECONDS)
    report_events(server, panel_sim, sending.subs[:7], "delivered")
    report_events(server, panel_sim, sending.subs[:3], "clicked")
    other = Tenant(db, v1_limit=10_000)
    with httpx.Client(base_url=server.url, timeout=30) as api:
        for tenant, campaign_id, sending_now in (
            (sending.tenant, sending.campaign_id, True),
            (launched.tenant, launched.campaign_id, False),
        ):
            with sign_in(server, tenant.token) as c:
                answer = c.get(f"/panel/campaigns/{campaign_id}/progress")
                assert answer.status_code == 200
                assert answer.headers["content-type"] == "application/json"
                assert answer.headers["cache-control"] == "no-store"
                progress = answer.json()
            status = api.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()
            [launch] = status["launches"]
            assert progress["status"] == status["status"]
            assert progress["launch_status"] == launch["status"]
            assert progress["sending"] is sending_now
            for key in ("targeted", "sent", "dropped", "delivered", "clicks"):
                assert progress[key] == launch[key], (key, progress, launch)
            assert progress["delivery_rate"] == launch["delivered"] / launch["sent"]
            assert progress["ctr"] == launch["clicks"] / launch["delivered"]
        assert progress["percent"] == 100  # the finished one
    # The numbers the partners can check by hand.
    assert (launched.delivered, launched.clicked) == (4, 2)

    # Another partner's campaign is not found, as an unknown one; no session, no numbers.
    with sign_in(server, other.token) as c:
        theirs = c.get(f"/panel/campaigns/{sending.campaign_id}/progress")
        unknown = c.get("/panel/campaigns/987654321/progress")
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.text == unknown.text
        assert "Flash sale" not in theirs.text
    with httpx.Client(base_url=server.url, timeout=30) as anon:
        answer = anon.get(f"/panel/campaigns/{sending.campaign_id}/progress")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/panel/login"
