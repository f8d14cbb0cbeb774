"""A database failing at request time gives 424 ``SERVICE:-`` — never a 500, never a
half-written row — and the server recovers by itself when the database returns."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from pushcamp.store import Database
from pushcamp.store.models import Campaign, IdempotencyKey, Launch, LaunchBatch, Subscriber
from pushcamp.testing.process import ServerProcess
from pushcamp.testing.simulator import PushServiceSimulator
from tests.conftest import BACKEND, Tenant
from tests.integration.launch.conftest import (
    add_subscribers,
    create_campaign,
    launch_body,
    wait_for_launches,
)
from tests.integration.tcpproxy import TcpProxy

FAILED = {"message": "SERVICE:-"}
FAST_TIMEOUTS = {"PUSHCAMP_DB_TIMEOUT_SECONDS": "1"}


def titles_in_db(db: Database, partner_id: str) -> set[str]:
    with db.read() as conn:
        return set(
            conn.execute(select(Campaign.title).where(Campaign.partner_id == partner_id)).scalars()
        )


def wait_for_status(client: httpx.Client, send, want: int, within: float) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        r = send()
        if r.status_code == want or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


@pytest.fixture
def proxied_server(
    database_url: str, db: Database, tmp_path: Path, backend: str
) -> Iterator[tuple[ServerProcess, TcpProxy]]:
    if backend != "postgresql":
        pytest.skip("the proxy cuts a network database; SQLite has its own test below")
    url = make_url(database_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = ServerProcess(via_proxy, tmp_path / "server.log", env=FAST_TIMEOUTS).start()
    try:
        yield server, proxy
    finally:
        server.stop()
        proxy.close()


@pytest.mark.postgres_only
def test_cut_database_mid_run_gives_424_then_recovers(
    proxied_server: tuple[ServerProcess, TcpProxy], tenant: Tenant, db: Database
) -> None:
    server, proxy = proxied_server
    outcomes: dict[str, int] = {}
    bodies: dict[str, object] = {}
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            i = 0
            while not stop.is_set():
                title = f"load {i}"
                r = c.post(
                    "/v1/single",
                    json=tenant.body(title=title, language="en_US"),
                    headers=tenant.auth,
                )
                outcomes[title] = r.status_code
                bodies[title] = r.json()
                i += 1

    workers = [threading.Thread(target=load) for _ in range(1)]
    for w in workers:
        w.start()
    time.sleep(1.0)
    proxy.cut()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        time.sleep(1.5)
        assert c.get("/readyz").status_code == 503
        r = c.post(
            "/v1/single",
            json=tenant.body(title="while down", language="en_US"),
            headers=tenant.auth,
        )
        assert r.status_code == 424 and r.json() == FAILED
        proxy.restore()
        r = wait_for_status(
            c,
            lambda: c.post(
                "/v1/single", json=tenant.body(title="after", language="en_US"), headers=tenant.auth
            ),
            201,
            within=15,
        )
        assert r.status_code == 201
        assert c.get("/readyz").status_code == 200
    time.sleep(0.5)
    stop.set()
    for w in workers:
        w.join()

    # Asserted here, in the test's thread: an assertion failing in the load thread
    # would only be a warning.
    codes = set(outcomes.values())
    assert codes <= {201, 424}, codes  # never a 500
    assert 424 in codes and 201 in codes
    assert all(bodies[t] == FAILED for t, code in outcomes.items() if code == 424)
    stored = titles_in_db(db, tenant.partner_id)
    created = {t for t, code in outcomes.items() if code == 201}
    assert created <= stored  # nothing acknowledged was lost
    assert "while down" not in stored
    # A request in flight when the connection is cut may have reached COMMIT before its
    # reply was lost: no client can tell that write from one that never happened, so
    # this test only checks that nothing acknowledged is lost. "424 means nothing was
    # written" is pinned exactly by the per-operation tests below, where the database
    # fails before or during the request's own transaction.


@pytest.mark.postgres_only
def test_stalled_database_gives_424_instead_of_hanging(
    proxied_server: tuple[ServerProcess, TcpProxy], tenant: Tenant
) -> None:
    server, proxy = proxied_server
    with httpx.Client(base_url=server.url, timeout=30) as c:
        body = tenant.body(title="before stall", language="en_US")
        assert c.post("/v1/single", json=body, headers=tenant.auth).status_code == 201
        proxy.stall()
        started = time.monotonic()
        r = c.post(
            "/v1/single", json=tenant.body(title="stalled", language="en_US"), headers=tenant.auth
        )
        assert r.status_code == 424 and r.json() == FAILED
        assert time.monotonic() - started < 10
        proxy.restore()


@pytest.mark.postgres_only
def test_public_endpoints_give_424_when_the_database_is_cut(
    proxied_server: tuple[ServerProcess, TcpProxy], tenant: Tenant
) -> None:
    """The browser-facing endpoints (no token) fail the same documented way."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from pushcamp.webpush import b64url_encode

    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    subscription = {
        "partner_id": tenant.partner_id,
        "endpoint": "https://fcm.googleapis.com/fcm/send/cut-test",
        "keys": {"p256dh": b64url_encode(point), "auth": b64url_encode(b"0123456789abcdef")},
    }
    visit = {"type": "visit", "partner_id": tenant.partner_id, "endpoint": subscription["endpoint"]}
    server, proxy = proxied_server
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.post("/v1/subscriptions", json=subscription).status_code in (200, 201)
        proxy.cut()
        time.sleep(0.5)
        for path, body in (("/v1/subscriptions", subscription), ("/v1/events", visit)):
            r = c.post(path, json=body)
            assert r.status_code == 424 and r.json() == FAILED, (path, r.text)
        proxy.restore()
        r = wait_for_status(
            c, lambda: c.post("/v1/subscriptions", json=subscription), 200, within=15
        )
        assert r.status_code == 200


def test_locked_sqlite_gives_424_then_recovers(
    database_url: str, db: Database, tmp_path: Path, backend: str, tenant: Tenant
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's failure mode: another process holds the write lock")
    path = make_url(database_url).database
    assert path
    with (
        ServerProcess(database_url, tmp_path / "server.log", env=FAST_TIMEOUTS) as server,
        httpx.Client(base_url=server.url, timeout=30) as c,
    ):
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            r = c.post(
                "/v1/single",
                json=tenant.body(title="locked out", language="en_US"),
                headers=tenant.auth,
            )
            assert r.status_code == 424 and r.json() == FAILED
            assert "pushcamp_dependency_failures_total 1.0" in c.get("/metrics").text
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        r = c.post(
            "/v1/single",
            json=tenant.body(title="locked out", language="en_US"),
            headers=tenant.auth,
        )
        assert r.status_code == 201
    assert "locked out" in titles_in_db(db, tenant.partner_id)


# --- each write, with the database failing during the request ------------------------------
#
# For create, launch, delete and subscribe: the database fails (PostgreSQL: the proxy cuts
# every connection, or stalls them so the request runs into its deadline; SQLite: another
# process holds the write lock), the request gets 424, and once the database is back the
# database shows exactly nothing of it — then the same request succeeds. Every assertion
# runs in the test's own thread.


class Outage:
    """A server whose database can be made to fail: ``mode`` is ``cut`` or ``stall``
    (PostgreSQL, through a TcpProxy) or ``lock`` (SQLite, another process holds the
    write lock)."""

    def __init__(self, mode: str, server: ServerProcess, database_url: str) -> None:
        self.mode = mode
        self.server = server
        self.database_url = database_url
        self.proxy: TcpProxy | None = None
        self._blocker: sqlite3.Connection | None = None
        self._restored_at: datetime | None = None

    def fail(self) -> None:
        if self.mode == "lock":
            path = make_url(self.database_url).database
            assert path
            self._blocker = sqlite3.connect(path, isolation_level=None)
            self._blocker.execute("BEGIN IMMEDIATE")
            return
        assert self.proxy is not None
        if self.mode == "cut":
            self.proxy.cut()
        else:
            self.proxy.stall()

    def restore(self, db: Database) -> None:
        if self._blocker is not None:
            self._blocker.execute("ROLLBACK")
            self._blocker.close()
            self._blocker = None
            return
        assert self.proxy is not None
        with db.read() as conn:
            restored_at = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        self.proxy.restore()
        if self.mode == "stall":
            _wait_for_stalled_transactions(db, restored_at)


def _wait_for_stalled_transactions(db: Database, restored_at: datetime) -> None:
    """After a stall, the bytes the proxy held reach PostgreSQL: wait until every
    connection the server had opened before the restore has left its transaction
    (committed or rolled back), so that what the database shows is that request's final
    word. A wait on a condition, not a timed sleep. (A connection the server was still
    opening during the stall is not seen here; a write it made late would show in the
    exact counts each test checks after its retry.)"""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_start < :t "
        "AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)')"
    )
    deadline = time.monotonic() + 30
    while True:
        with db.read() as conn:
            busy = conn.execute(query, {"t": restored_at}).scalar_one()
        if busy == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError("the server's stalled transactions never ended")
        time.sleep(0.05)


@pytest.fixture(params=["lock"] if BACKEND == "sqlite" else ["cut", "stall"])
def outage(
    request: pytest.FixtureRequest, database_url: str, db: Database, tmp_path: Path, backend: str
) -> Iterator[Outage]:
    mode: str = request.param
    env = {**FAST_TIMEOUTS, "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1"}
    proxy: TcpProxy | None = None
    url = database_url
    if backend == "postgresql":
        parsed = make_url(database_url)
        proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432))
        url = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = ServerProcess(url, tmp_path / "server.log", env=env).start()
    failing = Outage(mode, server, database_url)
    failing.proxy = proxy
    try:
        yield failing
    finally:
        server.stop()
        if proxy is not None:
            proxy.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[PushServiceSimulator]:
    with PushServiceSimulator(seed=11) as simulator:
        yield simulator


def refused(r: httpx.Response) -> None:
    assert (r.status_code, r.json()) == (424, FAILED), r.text


def campaign_rows(db: Database, partner_id: str) -> list[dict[str, object]]:
    with db.read() as conn:
        rows = conn.execute(
            select(Campaign.id, Campaign.title, Campaign.status, Campaign.deleted_at)
            .where(Campaign.partner_id == partner_id)
            .order_by(Campaign.id)
        ).mappings()
        return [dict(r) for r in rows]


def launch_state(db: Database, partner_id: str) -> tuple[int, int, int]:
    """(launches, batches, idempotency keys) the partner has."""
    with db.read() as conn:
        launches = conn.execute(
            select(func.count()).select_from(Launch).where(Launch.partner_id == partner_id)
        ).scalar_one()
        batches = conn.execute(
            select(func.count())
            .select_from(LaunchBatch)
            .join(Launch, Launch.id == LaunchBatch.launch_id)
            .where(Launch.partner_id == partner_id)
        ).scalar_one()
        keys = conn.execute(
            select(func.count())
            .select_from(IdempotencyKey)
            .where(IdempotencyKey.partner_id == partner_id)
        ).scalar_one()
    return launches, batches, keys


def subscriber_endpoints(db: Database, partner_id: str) -> list[str]:
    with db.read() as conn:
        return list(
            conn.execute(
                select(Subscriber.endpoint).where(Subscriber.partner_id == partner_id)
            ).scalars()
        )


def succeeds_again(send: Callable[[], httpx.Response], want: int) -> httpx.Response:
    """The same request, repeated until the server has its database back (PostgreSQL
    reconnects lazily); every answer on the way is the documented 424."""
    deadline = time.monotonic() + 20
    while True:
        r = send()
        if r.status_code == want or time.monotonic() > deadline:
            return r
        refused(r)
        time.sleep(0.2)


def test_create_that_gets_424_writes_nothing(outage: Outage, tenant: Tenant, db: Database) -> None:
    body = tenant.body(title="written or not", language="en_US", is_all=True)
    with httpx.Client(base_url=outage.server.url, timeout=30) as c:
        send = lambda: c.post("/v1/single", json=body, headers=tenant.auth)  # noqa: E731
        outage.fail()
        try:
            refused(send())
        finally:
            outage.restore(db)
        assert campaign_rows(db, tenant.partner_id) == []
        again = succeeds_again(send, 201)
    assert again.status_code == 201, again.text
    rows = campaign_rows(db, tenant.partner_id)
    assert [(r["id"], r["title"], r["status"]) for r in rows] == [
        (again.json()["campaign_id"], "written or not", "Draft")
    ]


def test_launch_that_gets_424_writes_nothing(
    outage: Outage, tenant: Tenant, db: Database, sim: PushServiceSimulator
) -> None:
    add_subscribers(db, tenant.partner_id, sim, 3)
    with httpx.Client(base_url=outage.server.url, timeout=30) as c:
        campaign_id = create_campaign(c, tenant, is_all=True)
        headers = {**tenant.auth, "Idempotency-Key": "launch-during-outage"}
        send = lambda: c.post(  # noqa: E731
            f"/v1/single/{campaign_id}", json=launch_body(tenant.partner_id), headers=headers
        )
        outage.fail()
        try:
            refused(send())
        finally:
            outage.restore(db)
        assert [r["status"] for r in campaign_rows(db, tenant.partner_id)] == ["Draft"]
        assert launch_state(db, tenant.partner_id) == (0, 0, 0)
        shown = c.get(f"/v1/single/{campaign_id}", headers=tenant.auth).json()
        assert (shown["status"], shown["launches"]) == ("Draft", [])
        again = succeeds_again(send, 200)
        assert again.status_code == 200, again.text
        assert again.json() == {"success": True, "campaign_id": campaign_id}
        launches = wait_for_launches(c, tenant, campaign_id)
    assert [(launch["status"], launch["sent"]) for launch in launches] == [("Sent", 3)]
    assert launch_state(db, tenant.partner_id) == (1, 1, 1)


def test_delete_that_gets_424_deletes_nothing(outage: Outage, tenant: Tenant, db: Database) -> None:
    with httpx.Client(base_url=outage.server.url, timeout=30) as c:
        campaign_id = create_campaign(c, tenant, is_all=True)
        send = lambda: c.request(  # noqa: E731
            "DELETE",
            f"/v1/single/{campaign_id}",
            json={"partner_id": tenant.partner_id},
            headers=tenant.auth,
        )
        outage.fail()
        try:
            refused(send())
        finally:
            outage.restore(db)
        (row,) = campaign_rows(db, tenant.partner_id)
        assert (row["status"], row["deleted_at"]) == ("Draft", None)
        again = succeeds_again(send, 200)
        assert again.status_code == 200, again.text
        assert again.json() == {"success": True, "campaign_id": campaign_id}
        # Deleted now, once: a second delete is the documented 400.
        assert send().status_code == 400
    (row,) = campaign_rows(db, tenant.partner_id)
    assert row["status"] == "Deleted" and row["deleted_at"] is not None


def test_subscribe_that_gets_424_stores_nothing(
    outage: Outage, tenant: Tenant, db: Database, sim: PushServiceSimulator
) -> None:
    browser = sim.subscribe()
    body = {"partner_id": tenant.partner_id, **browser.to_json(), "language": "en-US"}
    with httpx.Client(base_url=outage.server.url, timeout=30) as c:
        send = lambda: c.post("/v1/subscriptions", json=body)  # noqa: E731
        outage.fail()
        try:
            refused(send())
        finally:
            outage.restore(db)
        assert subscriber_endpoints(db, tenant.partner_id) == []
        # 201 is for an endpoint the partner did not have: the failed call left no row.
        again = succeeds_again(send, 201)
    assert again.status_code == 201, again.text
    assert subscriber_endpoints(db, tenant.partner_id) == [browser.endpoint]
