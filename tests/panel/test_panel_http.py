"""The panel over HTTP against the real server: what the pages promise, and its security
properties.

Invariants: the session cookie is HttpOnly, SameSite, scoped to /panel (and Secure when
pushcamp's public URL is https); a state-changing form without its session's CSRF token
changes nothing; a partner's session never shows another partner's campaigns; logging
out and revoking the token end a session on the server; no API token ever appears in a
URL or in the server's log; sign-in attempts are limited per address; no input gives 500.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pushcamp.errors import Unauthorized
from pushcamp.services import tokens
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess
from tests.conftest import Tenant
from tests.panel.conftest import Launched, csrf_of, fake_address, sign_in

TOKEN = re.compile(r"pc_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def new_campaign(client: httpx.Client, tenant: Tenant, title: str, is_all: bool = True) -> int:
    answer = client.post(
        "/v1/single",
        json=tenant.body(title=title, language="en_US", is_all=is_all),
        headers=tenant.auth,
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["campaign_id"])


def token_prefixes(db: Database, tenant: Tenant) -> list[tuple[str, bool]]:
    return [(t.prefix, t.revoked_at is None) for t in tokens.list_tokens(db, tenant.partner_id)]


# --- signing in ------------------------------------------------------------------------


def test_sign_in_sets_an_httponly_samesite_cookie_and_redirects_to_the_listing(
    server: ServerProcess, tenant: Tenant
) -> None:
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": fake_address()}) as c:
        answer = c.post("/panel/login", data={"token": tenant.token})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/panel/campaigns"
        cookie = answer.headers["set-cookie"]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert cookie.startswith("pushcamp_session=")
        assert "httponly" in attributes
        assert re.search(r"samesite=(lax|strict)", cookie, re.I)
        assert re.search(r"path=/panel(;|$)", cookie, re.I)
        assert "secure" not in attributes  # plain http here: a Secure cookie would be lost
        assert tenant.token not in cookie
        page = c.get("/panel/campaigns")
        assert page.status_code == 200
        assert tenant.partner_id in page.text


def test_a_wrong_token_opens_no_session(server: ServerProcess, tenant: Tenant) -> None:
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": fake_address()}) as c:
        wrong = tenant.token[:-4] + ("AAAA" if not tenant.token.endswith("AAAA") else "BBBB")
        for token in (wrong, "", "pc_zz", "x" * 5000, "pc_00000000_" + "A" * 43):
            answer = c.post("/panel/login", data={"token": token})
            assert answer.status_code == 401, token[:20]
            assert "set-cookie" not in answer.headers
            assert "Unknown or revoked token" in answer.text
        assert c.get("/panel/campaigns").status_code == 303


def test_pages_need_a_session(client: httpx.Client) -> None:
    for path in ("/panel/campaigns", "/panel/subscribers", "/panel/settings", "/panel/campaigns/1"):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/panel/login"
    client.cookies.set("pushcamp_session", "A" * 43)
    forged = client.get("/panel/settings")
    assert forged.headers["location"] == "/panel/login"
    assert client.post("/panel/settings/tokens").status_code == 303


def test_sign_in_attempts_are_limited_per_address(server: ServerProcess, tenant: Tenant) -> None:
    address = fake_address()
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": address}) as c:
        codes = [c.post("/panel/login", data={"token": "pc_wrong"}).status_code for _ in range(10)]
        assert codes == [401] * 10
        refused = c.post("/panel/login", data={"token": tenant.token})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "set-cookie" not in refused.headers
    # Another address is not concerned.
    with sign_in(server, tenant.token) as other:
        assert other.get("/panel/campaigns").status_code == 200


# --- CSRF ------------------------------------------------------------------------------


def test_a_form_posted_without_its_csrf_token_is_refused(
    server: ServerProcess, db: Database, tenant: Tenant
) -> None:
    with sign_in(server, tenant.token) as c:
        before = token_prefixes(db, tenant)
        csrf = csrf_of(c.get("/panel/settings").text)
        for data in ({}, {"csrf_token": ""}, {"csrf_token": csrf[:-1] + "x"}):
            answer = c.post("/panel/settings/tokens", data=data)
            assert answer.status_code == 403, data
            assert TOKEN.search(answer.text) is None
        prefix = "pc_" + before[0][0]
        refused = c.post("/panel/settings/tokens/revoke", data={"prefix": prefix})
        assert refused.status_code == 403
        assert c.post("/panel/logout", data={}).status_code == 403
        # From another site, even with the right token.
        cross = c.post(
            "/panel/settings/tokens",
            data={"csrf_token": csrf},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        cross = c.post(
            "/panel/settings/tokens",
            data={"csrf_token": csrf},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status_code == 403
        assert token_prefixes(db, tenant) == before  # nothing created, nothing revoked
        assert c.get("/panel/settings").status_code == 200  # still signed in
        # The same form with its token works.
        made = c.post(
            "/panel/settings/tokens", data={"csrf_token": csrf}, headers={"Origin": server.url}
        )
        assert made.status_code == 200
        assert len(token_prefixes(db, tenant)) == len(before) + 1


def test_a_session_csrf_token_does_not_work_for_another_session(
    server: ServerProcess, db: Database, tenant: Tenant
) -> None:
    with sign_in(server, tenant.token) as a, sign_in(server, tenant.token) as b:
        csrf_a = csrf_of(a.get("/panel/settings").text)
        assert csrf_a != csrf_of(b.get("/panel/settings").text)
        before = token_prefixes(db, tenant)
        assert b.post("/panel/settings/tokens", data={"csrf_token": csrf_a}).status_code == 403
        assert token_prefixes(db, tenant) == before


# --- sessions end on the server --------------------------------------------------------


def test_logging_out_ends_the_session_on_the_server(server: ServerProcess, tenant: Tenant) -> None:
    with sign_in(server, tenant.token) as c:
        session = c.cookies["pushcamp_session"]
        csrf = csrf_of(c.get("/panel/campaigns").text)
        out = c.post("/panel/logout", data={"csrf_token": csrf})
        assert out.status_code == 303
        assert out.headers["location"] == "/panel/login"
        assert (
            'pushcamp_session=""' in out.headers["set-cookie"]
            or "Max-Age=0" in out.headers["set-cookie"]
        )
    # The old cookie, replayed by someone who kept it, opens nothing.
    with httpx.Client(base_url=server.url, cookies={"pushcamp_session": session}) as replay:
        answer = replay.get("/panel/campaigns")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/panel/login"


def test_revoking_the_token_ends_its_sessions(
    server: ServerProcess, db: Database, tenant: Tenant
) -> None:
    second = tokens.create_token(db, tenant.partner_id)
    with sign_in(server, tenant.token) as c, sign_in(server, second) as other:
        assert c.get("/panel/settings").status_code == 200
        tokens.revoke_token(db, tenant.token[:11])
        assert c.get("/panel/settings").headers["location"] == "/panel/login"
        # A session opened with another token of the partner goes on.
        assert other.get("/panel/settings").status_code == 200
        # A revoked token cannot sign in again.
        again = httpx.post(
            f"{server.url}/panel/login",
            data={"token": tenant.token},
            headers={"X-Forwarded-For": fake_address()},
        )
        assert again.status_code == 401


# --- tenants ---------------------------------------------------------------------------


def test_a_session_never_shows_another_partners_campaigns(
    server: ServerProcess,
    db: Database,
    client: httpx.Client,
    make_tenant: Callable[..., Tenant],
    launched: Launched,
) -> None:
    mine = make_tenant(v1_limit=1000)
    own = new_campaign(client, mine, f"mine {secrets.token_hex(3)}")
    theirs = launched.campaign_id
    with sign_in(server, mine.token) as c:
        listing = c.get("/panel/campaigns").text
        assert f"/panel/campaigns/{own}" in listing
        assert launched.title not in listing
        assert f"/panel/campaigns/{theirs}" not in listing
        searched = c.get("/panel/campaigns", params={"q": launched.title}).text
        assert re.findall(r'data-campaign="(\d+)"', searched) == []
        unknown = c.get("/panel/campaigns/999999999")
        other = c.get(f"/panel/campaigns/{theirs}")
        assert other.status_code == unknown.status_code == 404
        assert other.text == unknown.text
        assert c.get(f"/panel/campaigns/{theirs}/progress").status_code == 404
        assert "Summer sale" not in other.text
        # Revoking another partner's token by its prefix is refused like an unknown one.
        csrf = csrf_of(c.get("/panel/settings").text)
        refused = c.post(
            "/panel/settings/tokens/revoke",
            data={"csrf_token": csrf, "prefix": launched.tenant.token[:11]},
        )
        assert refused.status_code == 404
    caller, _ = tokens.check_token(db, launched.tenant.token)  # still valid
    assert caller.partner_id == launched.tenant.partner_id


# --- the pages -------------------------------------------------------------------------


def test_the_listing_shows_live_is_all_campaigns_newest_first_with_their_numbers(
    server: ServerProcess, client: httpx.Client, tenant: Tenant
) -> None:
    first = new_campaign(client, tenant, "Spring 100% sale")
    second = new_campaign(client, tenant, "Autumn_sale")
    segment = new_campaign(client, tenant, "Segment only", is_all=False)
    gone = new_campaign(client, tenant, "Deleted one")
    deleted = client.request(
        "DELETE", f"/v1/single/{gone}", json=tenant.body(), headers=tenant.auth
    )
    assert deleted.status_code == 200
    with sign_in(server, tenant.token) as c:
        page = c.get("/panel/campaigns").text
        rows = re.findall(r'<tr data-campaign="(\d+)">', page)
        assert rows == [str(second), str(first)]  # newest first; no segment, no deleted
        assert str(segment) not in rows and str(gone) not in rows
        assert "Draft" in page
        # Search: any case, wildcards literal.
        assert re.findall(r'data-campaign="(\d+)"', c.get("/panel/campaigns?q=SPRING").text) == [
            str(first)
        ]
        assert re.findall(r'data-campaign="(\d+)"', c.get("/panel/campaigns?q=100%").text) == [
            str(first)
        ]
        assert re.findall(r'data-campaign="(\d+)"', c.get("/panel/campaigns?q=g_1").text) == []
        assert "No campaign title contains" in c.get("/panel/campaigns?q=zzz").text


def test_the_listing_is_paginated(
    server: ServerProcess, client: httpx.Client, tenant: Tenant
) -> None:
    ids = [new_campaign(client, tenant, f"page test {i:02d}") for i in range(23)]
    with sign_in(server, tenant.token) as c:
        one = re.findall(r'data-campaign="(\d+)"', c.get("/panel/campaigns").text)
        two_page = c.get("/panel/campaigns?page=2").text
        two = re.findall(r'data-campaign="(\d+)"', two_page)
        assert one == [str(i) for i in reversed(ids)][:20]
        assert two == [str(i) for i in reversed(ids)][20:]
        assert "page 2 of 2" in two_page
        # Past the end: no rows, and a way back rather than "no campaign yet".
        past = c.get("/panel/campaigns?page=9").text
        assert re.findall(r'data-campaign="(\d+)"', past) == []
        assert "There is no page 9: 23 campaigns fit on 2 pages." in past
        assert 'href="?q=&amp;page=2"' in past
        assert "No Web Push campaign yet" not in past
        # A search keeps its words from page to page.
        found = c.get("/panel/campaigns", params={"q": "PAGE TEST"}).text
        assert "23 campaigns · page 1 of 2" in found
        assert 'href="?q=PAGE%20TEST&amp;page=2"' in found
        rest = c.get("/panel/campaigns?q=PAGE%20TEST&page=2").text
        assert re.findall(r'data-campaign="(\d+)"', rest) == [str(i) for i in reversed(ids[:3])]
        assert 'href="?q=PAGE%20TEST&amp;page=1"' in rest


def test_a_partner_with_nothing_yet_sees_empty_states(
    server: ServerProcess, tenant: Tenant
) -> None:
    with sign_in(server, tenant.token) as c:
        listing = c.get("/panel/campaigns")
        assert listing.status_code == 200
        assert "No Web Push campaign yet" in listing.text
        assert "data-campaign=" not in listing.text and 'class="pager"' not in listing.text
        searched = c.get("/panel/campaigns?q=sale&page=3").text
        assert "No campaign title contains “sale”" in searched
        assert "There is no page" not in searched
        subscribers = c.get("/panel/subscribers")
        assert subscribers.status_code == 200
        assert 'id="no-subscribers"' in subscribers.text
        assert 'data-field="total">0<' in subscribers.text
        assert subscribers.text.count("None yet") == 4  # language, browser, OS, device
        assert "<svg" in subscribers.text  # the growth chart, flat at zero
        settings = c.get("/panel/settings")
        assert settings.status_code == 200
        assert "none yet" in settings.text


def test_odd_input_never_gives_a_500(server: ServerProcess, tenant: Tenant) -> None:
    with sign_in(server, tenant.token) as c:
        for path in (
            "/panel/campaigns?page=-1",
            "/panel/campaigns?page=99999999999999999999",
            "/panel/campaigns?page=%00",
            "/panel/campaigns?q=" + "x" * 5000,
            "/panel/campaigns?q=%ff%fe",
            "/panel/campaigns?q=%00",
            "/panel/campaigns/99999999999999999999999",
            "/panel/campaigns/-1",
            "/panel/campaigns/abc",
            "/panel/nothing",
        ):
            answer = c.get(path)
            assert answer.status_code in (200, 404), (path, answer.status_code)
            assert answer.headers["content-type"].startswith("text/html")
        csrf = csrf_of(c.get("/panel/settings").text)
        for body, kind in (
            (b"--x\r\nbroken", "multipart/form-data; boundary=x"),
            (b"\xff\xfe=\x00", "application/x-www-form-urlencoded"),
            (b"{}", "application/json"),
        ):
            answer = c.post("/panel/settings/tokens", content=body, headers={"Content-Type": kind})
            assert answer.status_code in (400, 403), (kind, answer.status_code)
        revoke = c.post(
            "/panel/settings/tokens/revoke", data={"csrf_token": csrf, "prefix": "\x00%_" * 50}
        )
        assert revoke.status_code == 404
    with httpx.Client(base_url=server.url, headers={"X-Forwarded-For": fake_address()}) as anon:
        broken = anon.post(
            "/panel/login",
            content=b"--x\r\nbroken",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        assert broken.status_code in (400, 401)


def test_the_campaign_page_shows_the_notification_chart_and_breakdowns(
    server: ServerProcess, launched: Launched
) -> None:
    with sign_in(server, launched.tenant.token) as c:
        listing = c.get("/panel/campaigns").text
        row = listing.split(f'data-campaign="{launched.campaign_id}"', 1)[1].split("</tr>", 1)[0]
        assert 'data-field="targeted">6<' in row
        assert 'data-field="sent">6<' in row
        assert 'data-field="delivered">4<' in row
        assert 'data-field="clicks">2<' in row
        assert 'data-field="ctr">50.00%<' in row
        page = c.get(f"/panel/campaigns/{launched.campaign_id}")
        assert page.status_code == 200
        html = page.text
        # The notification, escaped: its title's markup is text, not markup.
        assert "Summer sale &lt;b&gt;now&lt;/b&gt;" in html
        assert "20% off &amp; free shipping" in html
        assert "<b>now</b>" not in html
        # The chart: an inline SVG drawn on the server, with no script and nothing fetched.
        svg = html.split('id="delivery-chart"', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in svg and "</svg>" in svg
        assert "<script" not in svg.lower()
        assert re.search(r'(?:href|src)="https?:', svg) is None
        assert "sent" in svg and "delivered" in svg and "clicked" in svg
        assert "<script" not in html.replace('<script src="/panel/static/panel.js"', "")
        for label in ("frequencyCapped", "unsubscriptions", "Desktop"):
            assert label in html
        assert f"#{launched.campaign_id} · all languages" in html  # all_ALL, in words
        # Reasons with nothing counted are muted and draw no bar; counted ones do.
        dropped = html.split('id="dropped"', 1)[1].split("</section>", 1)[0]
        assert dropped.count('<tr class="zero">') == 5 and "<span style" not in dropped
        undelivered = html.split('id="undelivered"', 1)[1].split("</section>", 1)[0]
        assert '<span style="width: 100.0%">' in undelivered
        headers = page.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["cache-control"] == "no-store"


def test_the_campaign_page_shows_the_schedule_rate_buttons_and_badge(
    server: ServerProcess, client: httpx.Client, db: Database
) -> None:
    """A scheduled, throttled launch with buttons and a badge (docs/delivery.md): the
    page says when and at what rate it sends, and the preview shows the buttons (their
    titles escaped) and the badge."""
    from datetime import UTC, datetime, timedelta

    tenant = Tenant(db, v1_limit=10_000)
    campaign_id = new_campaign(client, tenant, "Scheduled sale")
    send_at = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    body = tenant.body(
        title="Sale",
        description="Soon",
        link="https://shop.example/sale",
        ttl=3600,
        send_at=send_at.isoformat(),
        max_per_minute=1500,
        actions=[
            {"title": "Shop <now>", "link": "https://shop.example/now"},
            {"title": "Later", "link": "https://shop.example/later"},
        ],
        badge="https://shop.example/badge.png",
    )
    answer = client.post(f"/v1/single/{campaign_id}", json=body, headers=tenant.auth)
    assert answer.status_code == 200, answer.text
    with sign_in(server, tenant.token) as c:
        html = c.get(f"/panel/campaigns/{campaign_id}").text
    facts = html.split('<dl class="facts">', 1)[1].split("</dl>", 1)[0]
    assert "<dd>Scheduled</dd>" in facts
    assert f'data-field="send-at">{send_at:%Y-%m-%d %H:%M} UTC<' in facts
    assert 'data-field="max-per-minute">at most 1,500 a minute<' in facts
    preview = html.split('id="preview"', 1)[1].split("</section>", 1)[0]
    assert '<img class="badge" src="https://shop.example/badge.png"' in preview
    assert re.findall(r'<a class="action" href="([^"]+)"[^>]*>([^<]*)</a>', preview) == [
        ("https://shop.example/now", "Shop &lt;now&gt;"),
        ("https://shop.example/later", "Later"),
    ]
    # A launch without them shows none of it.
    plain = new_campaign(client, tenant, "Plain")
    body = tenant.body(title="Plain", description="x", link="https://shop.example/", ttl=60)
    assert client.post(f"/v1/single/{plain}", json=body, headers=tenant.auth).status_code == 200
    with sign_in(server, tenant.token) as c:
        html = c.get(f"/panel/campaigns/{plain}").text
    for marker in ('data-field="send-at"', "max-per-minute", 'class="badge"', 'class="action"'):
        assert marker not in html


def test_the_subscribers_page_counts_and_draws_growth(
    server: ServerProcess, launched: Launched
) -> None:
    with sign_in(server, launched.tenant.token) as c:
        html = c.get("/panel/subscribers").text
    assert 'data-field="total">6<' in html
    assert 'data-field="engaged">6<' in html
    assert 'data-field="unengaged">0<' in html
    by_language = html.split('id="by-language"', 1)[1].split("</section>", 1)[0]
    assert "en_US" in by_language and ">6<" in by_language
    assert '<span style="width: 100.0%">' in by_language  # the largest row: a full bar
    by_browser = html.split('id="by-browser"', 1)[1].split("</section>", 1)[0]
    assert "Chrome" in by_browser
    by_device = html.split('id="by-device"', 1)[1].split("</section>", 1)[0]
    assert '<th scope="row">Desktop</th>' in by_device  # as the campaign page names it
    for chart in ("growth-chart", "new-chart"):
        svg = html.split(f'id="{chart}"', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in svg and "<script" not in svg.lower()


def test_settings_show_the_key_the_snippet_and_the_limits(
    server: ServerProcess, db: Database, tenant: Tenant
) -> None:
    from pushcamp.services import partners

    with sign_in(server, tenant.token) as c:
        html = c.get("/panel/settings").text
    assert partners.vapid_public_key(db, tenant.partner_id) in html
    assert f'data-partner="{tenant.partner_id}"' in html
    assert f"{server.url}/sdk/pushcamp.js" in html
    assert "10,000 requests per minute" in html
    assert tenant.token not in html
    assert f"pc_{tenant.token[3:11]}_…" in html


def test_a_created_token_is_shown_once_and_works_and_revoking_it_stops_it(
    server: ServerProcess, db: Database, tenant: Tenant
) -> None:
    with sign_in(server, tenant.token) as c:
        csrf = csrf_of(c.get("/panel/settings").text)
        made = c.post("/panel/settings/tokens", data={"csrf_token": csrf})
        assert made.status_code == 200  # the page itself, never a redirect
        found = TOKEN.findall(made.text)
        assert len(found) == 1
        new = found[0]
        assert tokens.check_token(db, new)[0].partner_id == tenant.partner_id
        assert new not in c.get("/panel/settings").text  # shown once
        revoked = c.post(
            "/panel/settings/tokens/revoke", data={"csrf_token": csrf, "prefix": new[:11]}
        )
        assert revoked.status_code == 200
        assert f"Token {new[:11]} revoked" in revoked.text
        with pytest.raises(Unauthorized):
            tokens.check_token(db, new)
        # Revoking the session's own token signs it out.
        out = c.post(
            "/panel/settings/tokens/revoke",
            data={"csrf_token": csrf, "prefix": tenant.token[:11]},
        )
        assert out.status_code == 303
        assert out.headers["location"] == "/panel/login"


def test_no_token_or_session_id_in_any_url_or_the_server_log(
    server: ServerProcess, tenant: Tenant, server_log: Path
) -> None:
    seen_urls: list[str] = []

    def record(response: httpx.Response) -> None:
        seen_urls.append(str(response.request.url))
        seen_urls.append(response.headers.get("location", ""))

    with httpx.Client(
        base_url=server.url,
        headers={"X-Forwarded-For": fake_address()},
        event_hooks={"response": [record]},
        follow_redirects=True,
    ) as c:
        c.post("/panel/login", data={"token": tenant.token})
        session = c.cookies["pushcamp_session"]
        csrf = csrf_of(c.get("/panel/settings").text)
        made = TOKEN.findall(c.post("/panel/settings/tokens", data={"csrf_token": csrf}).text)[0]
        c.post("/panel/login", data={"token": tenant.token + "x"})
        c.get("/panel/campaigns?q=" + tenant.token[:11])
    secrets_ = (tenant.token, made, session, csrf, tenant.token[12:], made[12:])
    for url in seen_urls:
        for secret in secrets_:
            assert secret not in url
    log = server_log.read_text(encoding="utf-8")
    assert tenant.partner_id in log  # the log is the server's, and it saw these requests
    for secret in secrets_:
        assert secret not in log


def test_the_session_cookie_is_secure_when_the_public_url_is_https(
    database_url: str, db: Database, tmp_path: Path, tenant: Tenant
) -> None:
    env = {"PUSHCAMP_PUBLIC_URL": "https://push.example.com"}
    with ServerProcess(database_url, tmp_path / "https.log", env=env) as https_server:
        answer = httpx.post(
            f"{https_server.url}/panel/login",
            data={"token": tenant.token},
            headers={"Origin": "https://push.example.com"},
        )
    assert answer.status_code == 303
    attributes = [p.strip().lower() for p in answer.headers["set-cookie"].split(";")]
    assert "secure" in attributes and "httponly" in attributes
