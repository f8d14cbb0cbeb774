"""Helpers for the public subscriber endpoints: real browser-like subscriptions (a real
P-256 key and auth secret), endpoints on the listed loopback push host, and direct reads
of what the server stored."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from pushcamp.services import sites
from pushcamp.store import Database
from pushcamp.store.models import Event, Subscriber
from pushcamp.store.partners import get_site_settings
from pushcamp.testing.process import ServerProcess
from pushcamp.webpush import b64url_encode
from tests.conftest import Tenant

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


def browser_keys() -> dict[str, str]:
    """What ``PushSubscription.toJSON().keys`` holds: a fresh P-256 point and 16 bytes."""
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return {"p256dh": b64url_encode(point), "auth": b64url_encode(secrets.token_bytes(16))}


def local_endpoint() -> str:
    """An endpoint on the loopback push host the test server lists."""
    return f"http://127.0.0.1:9/push/{secrets.token_hex(8)}"


def subscription(tenant: Tenant, endpoint: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "partner_id": tenant.partner_id,
        "endpoint": endpoint or local_endpoint(),
        "keys": browser_keys(),
        **fields,
    }


def subscribers(db: Database, partner_id: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(Subscriber).where(Subscriber.partner_id == partner_id).order_by(Subscriber.id)
        ).mappings()
        return [dict(r) for r in rows]


def subscriber(db: Database, partner_id: str, endpoint: str) -> dict[str, Any]:
    found = [r for r in subscribers(db, partner_id) if r["endpoint"] == endpoint]
    assert len(found) == 1, found
    return found[0]


def events(db: Database, partner_id: str | None = None) -> list[dict[str, Any]]:
    stmt = select(Event).order_by(Event.id)
    if partner_id is not None:
        stmt = stmt.where(Event.partner_id == partner_id)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def signing_key(db: Database, partner_id: str) -> bytes:
    with db.read() as conn:
        site = get_site_settings(conn, partner_id)
    assert site is not None
    return site.signing_key


def set_site(db: Database, tenant: Tenant, *origins: str) -> None:
    sites.set_site_origins(db, tenant.partner_id, list(origins))


@pytest.fixture(scope="module")
def limited_server(
    database_url: str, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server of its own with a tiny per-address budget (5 per minute per endpoint)
    a configured public URL, and only ``localhost:9`` as an extra push host."""
    log: Path = tmp_path_factory.mktemp("logs") / "limited.log"
    env = {
        "PUSHCAMP_PUSH_ALLOWED_HOSTS": "localhost:9",
        "PUSHCAMP_PUBLIC_PER_IP_LIMIT": "5",
        "PUSHCAMP_PUBLIC_URL": "https://push.example.com/",
    }
    with ServerProcess(database_url, log, env=env) as proc:
        yield proc


@pytest.fixture
def limited_client(limited_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=limited_server.url, timeout=30) as c:
        yield c
