"""Redis failing at request time: fail closed. A request that needs a rate-limit decision
gets 424 ``SERVICE:-`` and changes nothing, ``/readyz`` says 503 naming Redis, and the
server recovers by itself when Redis is back. A stalled Redis is bounded by
PUSHCAMP_REDIS_TIMEOUT_SECONDS, never a hang."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from pushcamp.store import Database
from pushcamp.store.models import Campaign
from pushcamp.testing.process import ServerProcess
from tests.conftest import Tenant
from tests.integration.scaled.conftest import RedisUnderTest
from tests.integration.tcpproxy import TcpProxy

FAILED = {"message": "SERVICE:-"}


@pytest.fixture
def proxied(
    shared_redis: RedisUnderTest, database_url: str, db: Database, tmp_path: Path
) -> Iterator[tuple[ServerProcess, TcpProxy]]:
    """A server whose Redis is reached through a proxy the test can cut or stall."""
    url = make_url(shared_redis.url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 6379))
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    env = {
        "PUSHCAMP_REDIS_URL": via_proxy,
        "PUSHCAMP_REDIS_KEY_PREFIX": shared_redis.prefix,
        "PUSHCAMP_REDIS_TIMEOUT_SECONDS": "0.5",
    }
    server = ServerProcess(database_url, tmp_path / "server.log", env=env).start()
    try:
        yield server, proxy
    finally:
        server.stop()
        proxy.close()


def titles(db: Database, partner_id: str) -> set[str]:
    with db.read() as conn:
        return set(
            conn.execute(select(Campaign.title).where(Campaign.partner_id == partner_id)).scalars()
        )


def until(send, status: int, within: float = 15) -> httpx.Response:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while True:
        r = send()
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


@pytest.mark.parametrize("failure", ["cut", "stall"])
def test_redis_unreachable_gives_424_and_readyz_503_then_recovers(
    proxied: tuple[ServerProcess, TcpProxy], db: Database, failure: str
) -> None:
    server, proxy = proxied
    tenant = Tenant(db, v1_limit=1000)

    def create(title: str) -> httpx.Response:
        return c.post(
            "/v1/single", json=tenant.body(title=title, language="en_US"), headers=tenant.auth
        )

    # The client's own timeout is the bound: a request hanging on Redis fails the test.
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert create("before").status_code == 201
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}

        proxy.cut() if failure == "cut" else proxy.stall()
        down = create("while down")
        assert down.status_code == 424 and down.json() == FAILED
        # The public endpoints' per-address budgets live in Redis too.
        config = c.get(f"/sdk/{tenant.partner_id}/config")
        assert config.status_code == 424 and config.json() == FAILED
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "checks": {"database": "ok", "redis": "unreachable"},
        }
        # Liveness is not readiness: the process itself is fine.
        assert c.get("/healthz").status_code == 200

        proxy.restore()
        after = until(lambda: create(f"after {secrets.token_hex(3)}"), 201)
        assert after.status_code == 201, after.text
        assert after.headers["x-ratelimit-limit"] == "1000"
        assert c.get("/readyz").status_code == 200

    stored = titles(db, tenant.partner_id)
    assert "before" in stored and "while down" not in stored
