"""Pooled PostgreSQL connections are pinged only after sitting idle (store/db.py
``_ping_when_idle``): one whose server process went away while it was idle is replaced
before it is used; one handed back a moment ago is used as it is, without a round trip."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from pushcamp.errors import DependencyUnavailable
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store import db as db_module

pytestmark = pytest.mark.postgres_only

IDLE = 0.3  # the threshold the Database under test is built with


@pytest.fixture
def pinged_db(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setattr(db_module, "PING_IDLE_SECONDS", IDLE)
    database = Database(settings)
    yield database
    database.dispose()


def _backend_pid(database: Database) -> int:
    with database.read() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(other: Database, pid: int) -> None:
    with other.write() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    # The server process ends a moment after the signal.
    for _ in range(100):
        with other.read() as conn:
            alive = conn.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            ).scalar_one()
        if not alive:
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} still running")


def test_a_connection_lost_while_idle_is_replaced_before_use(
    pinged_db: Database, db: Database
) -> None:
    pid = _backend_pid(pinged_db)
    _terminate(db, pid)
    time.sleep(IDLE * 2)  # idle past the threshold: pinged at the next checkout
    assert _backend_pid(pinged_db) != pid  # a new connection, and no error


def test_a_connection_back_a_moment_ago_is_not_pinged(
    pinged_db: Database, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "PING_IDLE_SECONDS", 3600.0)
    slow = Database(pinged_db.settings)  # an hour's threshold: never pinged here
    try:
        pid = _backend_pid(slow)
        _terminate(db, pid)
        # Not pinged: the statement itself meets the closed connection ...
        with pytest.raises(DependencyUnavailable):
            _backend_pid(slow)
        # ... and the pool is replaced, so the next unit of work succeeds.
        assert _backend_pid(slow) != pid
    finally:
        slow.dispose()
