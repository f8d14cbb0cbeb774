"""Shared fixtures. The suite runs once per backend:

* SQLite (default): a fresh database file in a temporary directory;
* PostgreSQL: set ``PUSHCAMP_TEST_DATABASE_URL=postgresql://user@host:port/db``; a fresh
  database is created next to the one named there and dropped at the end.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from pushcamp.services import partners, tokens
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.testing.process import ServerProcess

PG_URL = os.environ.get("PUSHCAMP_TEST_DATABASE_URL", "")
BACKEND = "postgresql" if PG_URL.startswith("postgres") else "sqlite"


def pytest_report_header() -> str:
    return f"pushcamp backend: {BACKEND}"


def pytest_configure(config: pytest.Config) -> None:
    # ./test runs the PostgreSQL leg in the background, where the shell has Ctrl-C ignored:
    # taken back, so that both legs stop on it and tear their servers down.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# The browser tiers drive a real browser against a real server; what they prove is the
# browser side (SDK, service worker, panel pages), which does not depend on the database
# under the server. They run once, on the SQLite leg, so that CI stays short; the
# integration tier proves the same server paths on both backends.
BROWSER_TIERS = (
    "tests/browser/",
    "tests/e2e/",
    "tests/panel/test_panel_browser.py",
    "tests/panel/test_panel_live.py",
)


def _in_browser_tier(item: pytest.Item) -> bool:
    path = item.path.as_posix()
    return any(f"/{tier}" in path or path.endswith(f"/{tier}") for tier in BROWSER_TIERS)


# A test depends on the backend under test when it is marked ``postgres_only``, when it
# requests one of these fixtures (every database fixture, and every server on the
# session's database, goes through ``database_url``), or when its module imports one of
# these names (to make a database of its own, or to branch on the backend). The others
# (domain rules, the Web Push library, the simulator, the HTTP client, the CLI's parsing,
# SQLite files of their own...) do the same thing on both legs: with
# PUSHCAMP_TEST_BACKEND_ONLY=1 (./test's PostgreSQL leg) they are deselected, so they
# run once, on the SQLite leg.
BACKEND_FIXTURES = frozenset({"database_url", "backend"})
BACKEND_NAMES = ("fresh_database", "BACKEND", "PG_URL")
BACKEND_ONLY = os.environ.get("PUSHCAMP_TEST_BACKEND_ONLY", "") == "1"


def depends_on_backend(item: pytest.Item) -> bool:
    if "postgres_only" in item.keywords:
        return True
    if BACKEND_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    return module is not None and any(hasattr(module, name) for name in BACKEND_NAMES)


# The test being run, if it does not depend on the backend: fresh_database() refuses to
# serve it (a fixture or helper that makes a database without requesting ``backend``
# would otherwise have its test run on one leg only, unnoticed).
_backend_free_test: str | None = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    global _backend_free_test
    _backend_free_test = None if depends_on_backend(item) else item.nodeid
    try:
        yield
    finally:
        _backend_free_test = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs PUSHCAMP_TEST_DATABASE_URL (PostgreSQL)")
    once = pytest.mark.skip(reason="browser tier: runs once, on the SQLite leg")
    if BACKEND_ONLY:
        free = [item for item in items if not depends_on_backend(item)]
        if free:
            config.hook.pytest_deselected(items=free)
            items[:] = [item for item in items if depends_on_backend(item)]
    for item in items:
        if "postgres_only" in item.keywords and BACKEND != "postgresql":
            item.add_marker(skip)
        elif BACKEND == "postgresql" and _in_browser_tier(item):
            item.add_marker(once)


@pytest.fixture(scope="session")
def backend() -> str:
    return BACKEND


@contextmanager
def fresh_database(directory: Path, prefix: str = "pushcamp_test") -> Iterator[str]:
    """A new, empty database of the backend under test, dropped afterwards: a SQLite file
    in ``directory``, or a database of its own next to PUSHCAMP_TEST_DATABASE_URL.
    A fixture that calls it requests ``backend`` (see depends_on_backend)."""
    if _backend_free_test is not None:
        raise RuntimeError(
            f"{_backend_free_test} makes a database of the backend under test but does not"
            " depend on the backend: request the ``backend`` fixture (or ``database_url``),"
            " or it would run on one leg only"
        )
    if BACKEND == "sqlite":
        yield f"sqlite:///{directory / f'{prefix}.db'}"
        return
    import psycopg

    admin = make_url(PG_URL).set(drivername="postgresql")
    name = f"{prefix}_{secrets.token_hex(4)}"
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_database(tmp_path_factory.mktemp("db"), "pushcamp") as url:
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture(scope="session")
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs") / "server.log"


@pytest.fixture(scope="session")
def server(database_url: str, db: Database, server_log: Path) -> Iterator[ServerProcess]:
    """One real ``pushcamp serve`` process for the whole session."""
    # Local push-service simulators are valid endpoints; every test shares one address.
    env = {
        "PUSHCAMP_PUSH_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PUSHCAMP_PUBLIC_PER_IP_LIMIT": "100000",
    }
    with ServerProcess(database_url, server_log, env=env) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


class Tenant:
    """A partner of its own for one test (so tests never see each other's rows)."""

    def __init__(self, db: Database, v1_limit: int | None = None, v2_limit: int | None = None):
        self.partner_id = f"t{secrets.token_hex(6)}"
        partners.create_partner(db, self.partner_id, "test", v1_limit, v2_limit)
        self.token = tokens.create_token(db, self.partner_id)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def body(self, **fields: object) -> dict[str, object]:
        return {"partner_id": self.partner_id, **fields}


@pytest.fixture
def tenant(db: Database) -> Tenant:
    return Tenant(db, v1_limit=10_000)


@pytest.fixture
def make_tenant(db: Database):  # type: ignore[no-untyped-def]
    def make(v1_limit: int | None = None, v2_limit: int | None = None) -> Tenant:
        return Tenant(db, v1_limit, v2_limit)

    return make


def run_cli(
    *args: str, database_url: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real ``pushcamp`` command line against ``database_url``."""
    env = {**os.environ, "PUSHCAMP_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "pushcamp", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"pushcamp {' '.join(args)} failed: {result.stderr}")
    return result


def recorded_launch(
    db: Database, partner_id: str, request: dict[str, Any] | None = None, *, is_all: bool = False
) -> int:
    """A real launch of the partner (a campaign and its launch row, ended, with nothing
    to send): what an event token must name for its events to count. ``request`` is the
    stored launch request (its notification's buttons, for instance); ``is_all`` makes
    the campaign an is_all one launched once."""
    from datetime import UTC, datetime

    from pushcamp.store import campaigns as campaigns_q
    from pushcamp.store import launches as launches_q

    row = campaigns_q.NewCampaignRow(
        partner_id=partner_id,
        title=f"events {secrets.token_hex(6)}",
        language="all_ALL",
        is_all=is_all,
        status="Sent",
    )
    with db.write() as conn:
        [campaign_id] = campaigns_q.insert_campaigns(conn, [row])
        assert campaign_id is not None
        return launches_q.insert_launch(
            conn,
            partner_id=partner_id,
            campaign_id=campaign_id,
            once=is_all,
            status="Sent",
            request=request or {},
            now=datetime.now(UTC),
        )
