"""``pushcamp db upgrade`` on SQLite applies every revision in one transaction, taken with
the write lock: a second migrator started at the same moment waits for the first to
commit and then finds the schema current. (Alembic commits after each revision on
SQLite unless it is handed a transaction already begun; between two revisions another
process read the old version and applied a revision twice: "duplicate column name".)"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event

from pushcamp.settings import Settings
from pushcamp.store import Database


def test_a_fresh_file_is_migrated_in_one_write_transaction(tmp_path: Path) -> None:
    db = Database(Settings(database_url=f"sqlite:///{tmp_path / 'fresh.db'}"))
    statements: list[str] = []

    @event.listens_for(db.engine, "connect")
    def trace(dbapi_conn: object, _record: object) -> None:
        # sqlite3's own trace: every statement the library sends to SQLite.
        dbapi_conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]

    try:
        db.migrate()
    finally:
        db.dispose()
    control = [s.split()[0].upper() for s in statements if s.split()[0].upper() in _TX]
    assert control == ["BEGIN", "COMMIT"], control
    begin = next(s for s in statements if s.upper().startswith("BEGIN"))
    assert begin.upper() == "BEGIN IMMEDIATE"
    assert any(s.strip().upper().startswith("CREATE TABLE") for s in statements)


_TX = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}
