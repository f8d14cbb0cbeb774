"""Group commit: a caller hears back only after its write committed; one bad write never
fails its neighbours; a failing database fails the whole batch and commits nothing."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from pushcamp.errors import DependencyUnavailable
from pushcamp.settings import Settings
from pushcamp.store import Database


@pytest.fixture
def db(tmp_path: Path):
    database = Database(Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}"))
    with database.write() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER UNIQUE)"))
    yield database
    database.dispose()


def values(db: Database) -> list[int]:
    with db.read() as conn:
        return sorted(conn.execute(text("SELECT v FROM t")).scalars())


def insert(v: int):
    def op(conn):
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": v})
        return v

    return op


def test_many_concurrent_writes_are_all_committed(db: Database) -> None:
    futures = [db.batcher.submit(insert(i)) for i in range(500)]
    assert [f.result(timeout=10) for f in futures] == list(range(500))
    assert values(db) == list(range(500))


def hold(db: Database, gate: threading.Event):
    """Keep the batcher busy on one op so that the next ones queue up into one batch."""
    started = threading.Event()

    def op(conn):
        started.set()
        return gate.wait(5)

    future = db.batcher.submit(op)
    assert started.wait(5)
    return future


def test_a_failing_op_fails_alone(db: Database) -> None:
    gate = threading.Event()
    first = hold(db, gate)
    futures = [db.batcher.submit(insert(v)) for v in (1, 2, 1, 3)]
    gate.set()
    first.result(timeout=5)
    outcomes = []
    for f in futures:
        try:
            outcomes.append(f.result(timeout=5))
        except Exception as exc:  # noqa: BLE001
            outcomes.append(type(exc).__name__)
    assert outcomes == [1, 2, "IntegrityError", 3]
    assert values(db) == [1, 2, 3]


def test_database_failure_fails_the_batch_and_commits_nothing(db: Database) -> None:
    gate = threading.Event()
    first = hold(db, gate)

    def broken(conn):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    futures = [
        db.batcher.submit(insert(10)),
        db.batcher.submit(broken),
        db.batcher.submit(insert(11)),
    ]
    gate.set()
    first.result(timeout=5)
    for f in futures:  # every caller hears 424 and may retry: none of them was committed
        with pytest.raises(DependencyUnavailable):
            f.result(timeout=5)
    assert values(db) == []
    assert db.batcher.submit(insert(12)).result(timeout=5) == 12  # and it carries on


def grouped(conn, items):
    """A grouped write: one multi-row statement for every waiting item."""
    conn.execute(
        text("INSERT INTO t (v) SELECT value FROM json_each(:vs)"), {"vs": json.dumps(items)}
    )
    return list(items)


def test_grouped_writes_of_one_loop_turn_share_one_call(db: Database) -> None:
    calls: list[list[int]] = []

    def group(conn, items):
        calls.append(list(items))
        return grouped(conn, items)

    async def main():
        return await asyncio.gather(*(db.batcher.run_grouped(group, v) for v in range(20)))

    assert asyncio.run(main()) == list(range(20))
    assert calls == [list(range(20))]  # one statement, run on the loop (the lock was free)
    assert values(db) == list(range(20))


def test_grouped_writes_wait_on_the_thread_while_the_write_lock_is_held(db: Database) -> None:
    """Another thread holds SQLite's write lock: the loop does not wait for it; the batch
    goes to the writer thread and commits once the lock is free."""
    gate = threading.Event()
    holding = threading.Event()

    def holder():
        with db.write():
            holding.set()
            gate.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    assert holding.wait(5)

    async def main():
        task = asyncio.gather(*(db.batcher.run_grouped(grouped, v) for v in (1, 2)))
        await asyncio.sleep(0.05)
        assert not task.done()  # waiting, and the loop is free meanwhile
        gate.set()
        return await task

    assert asyncio.run(main()) == [1, 2]
    t.join()
    assert values(db) == [1, 2]


def test_a_grouped_write_that_times_out_is_never_committed(db: Database) -> None:
    gate = threading.Event()
    first = hold(db, gate)  # the writer thread is busy, and holds the write lock

    async def main():
        with pytest.raises(DependencyUnavailable):
            await db.batcher.run_grouped(grouped, 7, timeout=0.05)

    asyncio.run(main())
    gate.set()
    first.result(timeout=5)
    assert db.batcher.submit(insert(8)).result(timeout=5) == 8
    assert values(db) == [8]  # the caller heard 424, so 7 must not be there
