"""The panel in a real browser: Debian's Chromium, headless, driven by Playwright, against
the real server. A person signs in, sees a launched campaign's numbers in the listing,
opens it and sees the chart drawn, creates and revokes a token, and logs out; the
session cookie is HttpOnly and a form posted without its CSRF token is refused.

Screenshots of each page are saved to ``PUSHCAMP_TEST_ARTIFACTS`` (default: the test's
temporary folder), at desktop and at phone width.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, expect

from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from tests.panel.conftest import Launched, fake_address, new_page
from tests.panel.conftest import sign_in_page as sign_in


def test_a_person_uses_the_panel(
    chromium: Browser, server: ServerProcess, db: Database, launched: Launched, artifacts: Path
) -> None:
    page = new_page(chromium, server)
    page.goto("/panel/campaigns")
    page.wait_for_url("**/panel/login")  # no session: the sign-in page
    page.screenshot(path=artifacts / "login.png", full_page=True)
    sign_in(page, launched.tenant.token)
    assert launched.tenant.token not in page.url

    # The session cookie: HttpOnly, SameSite, and invisible to scripts.
    [cookie] = [c for c in page.context.cookies() if c["name"] == "pushcamp_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] in ("Lax", "Strict")
    assert cookie["path"] == "/panel"
    assert "pushcamp_session" not in page.evaluate("document.cookie")

    # The listing, with the launched campaign's numbers.
    row = page.locator(f"tr[data-campaign='{launched.campaign_id}']")
    expect(row.locator("[data-field=sent]")).to_have_text("6")
    expect(row.locator("[data-field=delivered]")).to_have_text("4")
    expect(row.locator("[data-field=clicks]")).to_have_text("2")
    expect(row.locator("[data-field=ctr]")).to_have_text("50.00%")
    expect(row).to_contain_text("Sent")
    page.screenshot(path=artifacts / "listing.png", full_page=True)

    # The campaign page: the notification and the chart, drawn.
    row.locator("a").first.click()
    page.wait_for_url(f"**/panel/campaigns/{launched.campaign_id}")
    expect(page.locator("#preview .title")).to_have_text("Summer sale <b>now</b>")
    chart = page.locator("#delivery-chart svg:visible")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    # pygal draws each series as a path; the sent line has points to join.
    lines = page.locator("#delivery-chart svg:visible path.line")
    assert lines.count() >= 3
    expect(page.locator("#delivery-chart")).to_contain_text("delivered")
    page.screenshot(path=artifacts / "campaign.png", full_page=True)

    page.click("text=Subscribers")
    page.wait_for_url("**/panel/subscribers")
    expect(page.locator("[data-field=total]")).to_have_text("6")
    page.screenshot(path=artifacts / "subscribers.png", full_page=True)

    # Settings: create a token (shown once), then revoke it.
    page.click("text=Settings")
    page.wait_for_url("**/panel/settings")
    page.click("button:has-text('Create a token')")
    new_token = page.locator("#new-token").inner_text()
    assert re.fullmatch(r"pc_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", new_token)
    assert new_token not in page.url
    page.screenshot(path=artifacts / "settings-new-token.png", full_page=True)
    prefix = new_token[:11]
    token_row = page.locator(f"tr[data-prefix='{prefix}']")
    expect(token_row).to_contain_text("Active")
    token_row.locator("button:has-text('Revoke')").click()
    expect(page.locator(".alert.ok")).to_contain_text(f"Token {prefix} revoked")
    expect(page.locator(f"tr[data-prefix='{prefix}']")).to_contain_text("Revoked")
    assert new_token not in page.content()
    page.screenshot(path=artifacts / "settings.png", full_page=True)

    # A form posted from this page without its CSRF token is refused.
    status = page.evaluate(
        """() => fetch('/panel/settings/tokens', {method: 'POST',
             headers: {'Content-Type': 'application/x-www-form-urlencoded'},
             body: 'x=1'}).then(r => r.status)"""
    )
    assert status == 403

    # Log out: back to the sign-in page, and the pages are closed again.
    page.click("button:has-text('Log out')")
    page.wait_for_url("**/panel/login")
    page.goto("/panel/settings")
    page.wait_for_url("**/panel/login")
    page.context.close()


def test_the_panel_reads_at_phone_width_and_without_javascript(
    chromium: Browser, server: ServerProcess, launched: Launched, artifacts: Path
) -> None:
    context = chromium.new_context(
        base_url=server.url,
        viewport={"width": 375, "height": 812},
        java_script_enabled=False,
        extra_http_headers={"X-Forwarded-For": fake_address()},
    )
    page = context.new_page()
    sign_in(page, launched.tenant.token)
    for path, name in (
        ("/panel/campaigns", "phone-listing.png"),
        (f"/panel/campaigns/{launched.campaign_id}", "phone-campaign.png"),
        ("/panel/subscribers", "phone-subscribers.png"),
        ("/panel/settings", "phone-settings.png"),
    ):
        page.goto(path)
        # Nothing wider than the screen: no sideways scrolling.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, (path, width)
        page.screenshot(path=artifacts / name, full_page=True)
    page.goto(f"/panel/campaigns/{launched.campaign_id}")
    expect(page.locator("[data-field=sent]")).to_have_text("6")
    # The chart drawn for a narrow screen, its text as legible as the wide one's on a
    # desktop: the axis labels at least 10 px high.
    chart = page.locator("#delivery-chart svg:visible")
    expect(chart).to_have_count(1)
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] <= 375
    label = chart.locator(".axis.x text").first.bounding_box()
    assert label is not None and label["height"] >= 10, label
    for path in ("/panel/subscribers",):
        page.goto(path)
        for figure in ("#growth-chart", "#new-chart"):
            expect(page.locator(f"{figure} svg:visible")).to_have_count(1)
    context.close()
