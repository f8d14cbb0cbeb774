"""The SDK files and the demo page over real HTTP: what a site's <script> tag, a browser's
service-worker update check and importScripts() get.

Invariant: the scripts are served as JavaScript with a validator, so browsers cache them
and revalidate for a 304; the demo page of an unknown partner is a 404 page, not an SDK
that fails in the browser.
"""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Tenant


@pytest.mark.parametrize("path", ["/sdk/pushcamp.js", "/sdk/pushcamp-sw.js", "/pushcamp-sw.js"])
def test_scripts_are_cacheable_javascript(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["access-control-allow-origin"] == "*"
    etag = r.headers["etag"]

    again = client.get(path, headers={"If-None-Match": f'W/"other", {etag}'})
    assert again.status_code == 304
    assert again.content == b""
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.head(path).status_code == 200


def test_worker_is_the_same_file_at_both_addresses(client: httpx.Client) -> None:
    root, imported = client.get("/pushcamp-sw.js"), client.get("/sdk/pushcamp-sw.js")
    assert root.content == imported.content
    assert b'addEventListener("push"' in root.content


def test_demo_page_uses_the_sdk_like_a_site(client: httpx.Client, tenant: Tenant) -> None:
    r = client.get(f"/demo/{tenant.partner_id}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    base = str(client.base_url).rstrip("/")
    assert f'<script src="{base}/sdk/pushcamp.js" data-partner="{tenant.partner_id}"' in r.text
    assert 'id="subscribe"' in r.text


def test_demo_page_of_an_unknown_partner_is_a_404_page(client: httpx.Client) -> None:
    r = client.get("/demo/nobody-here")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "No such partner" in r.text
    assert "pushcamp.js" not in r.text


def test_demo_page_escapes_what_it_echoes(client: httpx.Client) -> None:
    r = client.get("/demo/%3Cb%3Ex")
    assert r.status_code == 404
    assert "&lt;b&gt;x" in r.text
    assert "<b>x" not in r.text
