"""A headless Chromium per test module, driven over the DevTools protocol (cdp.py), and a
partner of its own whose demo page the browser opens on the session's real server."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pushcamp.services import partners
from pushcamp.store import Database
from pushcamp.store.partners import get_site_settings
from pushcamp.testing.process import ServerProcess
from tests.browser.cdp import Browser, Page, find_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed (./test installs it with apt-get when run as root)")
    b = Browser(executable)
    try:
        yield b
    finally:
        b.close()


@dataclass(frozen=True)
class Site:
    partner_id: str
    origin: str
    signing_key: bytes

    @property
    def scope(self) -> str:
        return f"/demo/{self.partner_id}"

    def demo(self, query: str = "") -> str:
        return f"{self.origin}{self.scope}{query}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab, closed after the test."""
    p = browser.new_page()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def site(db: Database, server: ServerProcess) -> Site:
    partner_id = f"b{secrets.token_hex(6)}"
    partners.create_partner(db, partner_id, "browser test")
    with db.read() as conn:
        settings = get_site_settings(conn, partner_id)
    assert settings is not None
    return Site(partner_id, server.url, settings.signing_key)
