"""The database handle: engine set-up per backend, transactions, migrations, and the one
place where driver errors become pushcamp errors."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import resources
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, InvalidatePoolError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from pushcamp.errors import DependencyUnavailable
from pushcamp.settings import Settings
from pushcamp.store.batch import WriteBatcher, WriteBusy

# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out
# (:func:`_ping_when_idle`); one back from use more recently is not.
PING_IDLE_SECONDS = 1.0

# Any fixed 64-bit number: serialises concurrent `db upgrade` runs on PostgreSQL.
_MIGRATION_LOCK_ID = 0x7075736863616D70
# How long a SQLite migrator waits for others migrating the same file.
_SQLITE_MIGRATION_WAIT_SECONDS = 120


@contextmanager
def dependency_errors() -> Iterator[None]:
    """Turn a failing database into :class:`DependencyUnavailable` (HTTP 424): refused or
    lost connections, timeouts (statement, lock, pool), a locked SQLite file.

    Everything else passes through: an integrity error is the caller's business (a
    duplicate title is a 400), and a data or programming error is a bug to surface, not a
    dependency to blame.
    """
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeout) as exc:
        raise DependencyUnavailable(type(exc).__name__) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DependencyUnavailable(type(exc).__name__) from exc
        raise


class CommitGuard:
    """Whether the work of one request may still commit.

    A request that runs past its deadline is answered 424 ("nothing was written") while
    the thread doing its work may still be waiting on the database, and would commit once
    the database answers again. :meth:`Database.write` asks the guard of the calling
    context (:data:`commit_guard`) before COMMIT: once the request has been answered, the
    transaction is rolled back instead. The API sets a guard per service call.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = False
        self._committing = False

    def begin_commit(self) -> bool:
        """Called before COMMIT: False if the request was already answered."""
        with self._lock:
            if self._abandoned:
                return False
            self._committing = True
            return True

    def end_commit(self) -> None:
        with self._lock:
            self._committing = False

    def abandon(self) -> bool:
        """Called at the deadline: True if no COMMIT is under way (and none will start),
        False if one is, and its outcome is then the request's answer."""
        with self._lock:
            if self._committing:
                return False
            self._abandoned = True
            return True


commit_guard: ContextVar[CommitGuard | None] = ContextVar("pushcamp_commit_guard", default=None)


@contextmanager
def _guarded(guard: CommitGuard | None) -> Iterator[None]:
    try:
        yield
    finally:
        if guard is not None:
            guard.end_commit()


def _may_commit(guard: CommitGuard | None) -> None:
    if guard is not None and not guard.begin_commit():
        raise DependencyUnavailable("the request was answered before this write finished")


class Database:
    """One engine and its transaction helpers.

    On SQLite all writes of this process go through one lock: SQLite allows a single
    writer, and letting threads queue on SQLite's own busy handler (which sleeps in
    growing steps) costs far more latency than a Python lock. Other processes (the CLI)
    are still covered by ``busy_timeout`` and ``BEGIN IMMEDIATE``.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.database_url
        self.is_sqlite = settings.is_sqlite
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self.engine = self._create_engine()
        self._nowait_conn: Connection | None = None
        self.batcher = WriteBatcher(self)

    def _create_engine(self) -> Engine:
        timeout = self.settings.db_timeout_seconds
        if self.is_sqlite:
            engine = create_engine(
                self.url,
                connect_args={"timeout": timeout, "check_same_thread": False},
                pool_size=8,
                max_overflow=32,
                pool_timeout=timeout,
            )
            _configure_sqlite(engine, busy_ms=int(timeout * 1000))
            _create_private_file(self.url)
            return engine
        ms = int(timeout * 1000)
        engine = create_engine(
            self.url,
            pool_size=10,
            max_overflow=20,
            pool_timeout=timeout,
            pool_recycle=1800,
            connect_args={
                "connect_timeout": max(1, int(timeout)),
                # A cut network must not hang a request: give up on unacknowledged data,
                # and bound every statement on the server side too.
                "tcp_user_timeout": ms,
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 2,
                "options": f"-c statement_timeout={ms} -c lock_timeout={ms}",
            },
        )
        _ping_when_idle(engine, PING_IDLE_SECONDS)
        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any error, and
        rolled back too when the request it works for has already been answered
        (:class:`CommitGuard`)."""
        guard = commit_guard.get()
        with dependency_errors(), _guarded(guard):
            if self._write_lock is None:
                with self.engine.begin() as conn:
                    yield conn
                    _may_commit(guard)
                return
            with self._write_lock, self.engine.connect() as conn:
                conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                with conn.begin():
                    yield conn
                    _may_commit(guard)

    @contextmanager
    def write_nowait(self) -> Iterator[Connection]:
        """SQLite only: a write transaction on the calling thread (the event loop) that
        never waits. Raises :class:`WriteBusy` at once if another thread or process holds
        the write lock, or if the transaction cannot begin for any other reason (the
        caller then retries where it may wait, and meets the error there if it lasts).

        It uses one connection of its own whose commits never checkpoint: a checkpoint
        copies the WAL into the database and syncs the file, 10-25 ms that would stall
        every request. Whoever commits here calls :meth:`checkpoint` on a thread instead.
        """
        if self._write_lock is None or not self._write_lock.acquire(blocking=False):
            raise WriteBusy()
        try:
            conn = self._nowait_conn
            if conn is None or conn.invalidated or conn.closed:
                conn = self._nowait_conn = self._connect_nowait()
            try:
                transaction = conn.begin()
            except Exception as exc:
                self._drop_nowait()
                raise WriteBusy() from exc
            with dependency_errors(), transaction:
                yield conn
        finally:
            self._write_lock.release()

    def _connect_nowait(self) -> Connection:
        with dependency_errors():
            conn = self.engine.connect()
            conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            driver = conn.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA busy_timeout=0")
            driver.execute("PRAGMA wal_autocheckpoint=0")
            return conn

    def _drop_nowait(self) -> None:
        # Discarded, not returned to the pool: its settings are for this use only.
        if self._nowait_conn is not None:
            self._nowait_conn.invalidate()
            self._nowait_conn.close()
            self._nowait_conn = None

    def checkpoint(self) -> None:
        """Copy the WAL into the database file without blocking readers or writers (SQLite;
        a no-op elsewhere). Blocking: call it on a thread."""
        if self.is_sqlite:
            with dependency_errors(), self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only unit of work (a consistent snapshot on both backends)."""
        with dependency_errors(), self.engine.connect() as conn:
            yield conn
            conn.rollback()

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent; safe to run concurrently)."""
        if not self.is_sqlite:
            self._migrate()
            return
        # Several processes starting on one new SQLite file: besides the write lock (which
        # _migrate waits for), the first connection's switch to WAL needs the file to
        # itself, and a process that opened it a moment earlier can be told "database is
        # locked" before any busy handler runs. The upgrade is one transaction, so trying
        # it again is safe; give up after the same two minutes _migrate waits for a lock.
        deadline = time.monotonic() + _SQLITE_MIGRATION_WAIT_SECONDS
        while True:
            try:
                self._migrate()
                return
            except DependencyUnavailable as exc:
                cause = exc.__cause__
                locked = isinstance(cause, OperationalError) and "locked" in str(cause)
                if not locked or time.monotonic() > deadline:
                    raise
                self.engine.dispose()
                time.sleep(0.2)

    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option(
            "script_location", str(resources.files("pushcamp.store") / "migrations")
        )
        with dependency_errors(), self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
                conn.commit()
            elif self.is_sqlite:
                # One migrator at a time: the write lock is taken before the version is
                # read (a deferred BEGIN lets two readers deadlock when both upgrade to
                # writers), and the others wait for it in busy_timeout, long enough for
                # the whole migration of a fresh file.
                conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                driver = conn.connection.driver_connection
                assert driver is not None
                driver.execute(f"PRAGMA busy_timeout={_SQLITE_MIGRATION_WAIT_SECONDS * 1000}")
                # Begun here, so Alembic runs every revision in this one transaction: on
                # SQLite it would otherwise commit after each revision (its DDL counts as
                # non-transactional there), letting a second migrator in between to read
                # a version the first is about to move past, and apply a revision twice.
                conn.begin()
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_ID})
                    conn.commit()
                elif self.is_sqlite:
                    conn.invalidate()  # not back to the pool with these settings

    def dispose(self) -> None:
        self.batcher.close()
        self._drop_nowait()
        self.engine.dispose()


class StartupFailed(DependencyUnavailable):
    """The database cannot be used at start-up; the message is one line saying why."""


def check_startup(settings: Settings) -> None:
    """Before serving: bring the schema to the newest revision and prove the database
    takes a committed write. Without this, a read-only SQLite file whose schema is
    already current would let the server start and then answer 424 to every write.

    A path in a directory that does not exist, a read-only file or directory, a full
    disk, an unreachable or read-only server: :class:`StartupFailed`, one line naming the
    database (password hidden) and the driver's reason, so ``pushcamp serve`` can exit
    non-zero with that line instead of a traceback."""
    where = settings.redacted_database_url()
    db: Database | None = None
    try:
        db = Database(settings)
        db.migrate()
        with db.write() as conn:
            # A real change to a real page: committed to the file (SQLite: its WAL).
            conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except (DBAPIError, DependencyUnavailable, OSError) as exc:
        raise StartupFailed(f"cannot use the database {where}: {_reason(exc)}") from None
    finally:
        if db is not None:
            db.dispose()


_HINTS = (
    ("unable to open database file", "does its directory exist, and may pushcamp write there?"),
    ("readonly database", "the file or its directory is read-only"),
    ("disk is full", "the disk is full"),
    ("disk i/o error", "is the disk full or failing?"),
)


def _reason(exc: BaseException) -> str:
    """The driver's own words, on one line, with a hint for SQLite's terse ones."""
    while isinstance(exc, DependencyUnavailable) and exc.__cause__ is not None:
        exc = exc.__cause__
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    reason = lines[0] if lines else type(cause).__name__
    hint = next((h for key, h in _HINTS if key in reason.lower()), None)
    return f"{reason} ({hint})" if hint else reason


def _create_private_file(url: str) -> None:
    """Create the SQLite file readable and writable by its owner only (0600) before
    SQLite does: it holds the partners' VAPID private keys and event-signing keys.
    SQLite gives the ``-wal`` and ``-shm`` files the database file's permissions. An
    existing file is left as it is (its permissions are the operator's choice)."""
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return  # already there, no such directory, not writable: SQLite reports it itself
    os.close(fd)


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """SQLAlchemy's ``pool_pre_ping``, but only for a connection that has sat in the pool
    longer than ``idle_seconds``: one that dropped while idle (a database restart, a cut
    network) is replaced before anyone uses it, and the pool's older connections with it
    (as ``pool_pre_ping`` does), without a round trip on every checkout.
    The delivery engine checks a connection out many times a second, and a ping each time
    cost it about 6 % of its samples on PostgreSQL (docs/performance.md). A connection
    lost during the short gap is found by the statement that uses it, which fails as any
    statement does when the database goes away mid-transaction (the pool is then
    invalidated)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["pushcamp_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("pushcamp_idle_since", None)
        if since is None or time.monotonic() - since < idle_seconds:
            return  # just opened, or back from use a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise InvalidatePoolError(type(exc).__name__) from exc
        if not alive:
            raise InvalidatePoolError("ping failed")


def _configure_sqlite(engine: Engine, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy/our code issue BEGIN itself (pysqlite's implicit BEGIN is deferred
        # and would turn a read-then-write race into SQLITE_BUSY without waiting).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front (BEGIN IMMEDIATE) so that another process
        # holding it makes them wait in busy_timeout instead of failing mid-transaction.
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))
