"""Group commit: many small writes from concurrent requests in one transaction.

A commit is the expensive part of a small write (a WAL append and, on PostgreSQL, an
fsync), and on SQLite writers queue for one lock anyway. ``WriteBatcher`` runs writes
on one thread: it takes every write that is waiting (up to ``max_batch``), runs them in
a single transaction and commits once; each caller's future resolves only after that
commit, so an acknowledged write is durable exactly as if it had its own transaction.

Writes of one kind can also share a statement: a :data:`GroupWrite` gets every waiting
item of its kind at once (one multi-row ``INSERT`` instead of one statement per row,
which matters most where a statement is a network round trip).

Async callers (:meth:`WriteBatcher.run`, :meth:`WriteBatcher.run_grouped`) get an
asyncio future. Their writes are gathered on the event loop for one turn of the loop and
handed over as one batch; the results come back with one hop per batch, not per write.
On SQLite, a batch of grouped writes runs right there on the loop when the write lock is
free (``Database.write_nowait``): a few inserts and a commit in WAL mode cost less than
waking the writer thread and passing the GIL back and forth. When the lock is taken, the
batch goes to the thread, which may wait for it.

Failure isolation: a write must not break the transaction on an expected outcome (use
``ON CONFLICT DO NOTHING`` and the like). If one raises anyway, the batch is rolled back
and every write is re-run in a transaction of its own, so one bad write never fails its
neighbours. If the database itself fails, every write of the batch gets
:class:`DependencyUnavailable` and nothing of the batch is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from pushcamp.errors import DependencyUnavailable
from pushcamp.logs import get_logger

log = get_logger("pushcamp.store")

T = TypeVar("T")
A = TypeVar("A")
Op = Callable[[Connection], Any]
# Runs many items of one kind in the open transaction; one result per item, in order.
GroupWrite = Callable[[Connection, Sequence[A]], Sequence[T]]


class WriteBusy(Exception):
    """A write cannot start without waiting (another thread or process holds SQLite's
    write lock): run it where waiting is allowed instead."""


class _Entry:
    """One queued write: an op of its own, or one item of a grouped write; and who waits."""

    __slots__ = ("op", "group", "item", "future", "loop", "timeout", "timer")

    def __init__(
        self,
        op: Op | None,
        group: GroupWrite[Any, Any] | None,
        item: Any,
        future: Future[Any] | asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop | None,
        timeout: float | None = None,
    ) -> None:
        self.op = op
        self.group = group
        self.item = item
        self.future = future
        self.loop = loop
        self.timeout = timeout
        self.timer: asyncio.TimerHandle | None = None

    def claim(self) -> bool:
        """False if the caller gave up (cancelled, or timed out and heard 424) before the
        batch started: its write is skipped, never committed behind its caller's back."""
        if self.loop is None:
            assert isinstance(self.future, Future)
            return self.future.set_running_or_notify_cancel()
        # Read from the writer thread: at worst a timeout that lands right now is missed,
        # and the write commits while its caller hears 424, as with a timeout that
        # expires during the commit.
        return not self.future.done()


def _settle(outcomes: list[tuple[_Entry, bool, Any]]) -> None:
    """On the caller's loop: resolve the futures of one batch."""
    for entry, ok, value in outcomes:
        if entry.timer is not None:
            entry.timer.cancel()
        future = entry.future
        if future.done():  # cancelled or timed out meanwhile
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _expire(entries: list[_Entry], timeout: float) -> None:
    """On the loop: the thread did not answer in time (a database that stopped answering
    on an open connection): the callers get 424 instead of waiting on."""
    for entry in entries:
        if not entry.future.done():
            entry.future.set_exception(DependencyUnavailable(f"no answer within {timeout:.0f}s"))


# Inline SQLite commits between two checkpoints (each appends a few WAL pages; SQLite's
# own automatic checkpoint comes at 1000 pages).
CHECKPOINT_EVERY = 250


class WriteBatcher:
    def __init__(self, db: Any, max_batch: int = 256) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[list[_Entry] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # Async writes of the current turn of each event loop, not yet handed over.
        self._pending: dict[asyncio.AbstractEventLoop, list[_Entry]] = {}
        self._inline = bool(getattr(db, "is_sqlite", False))
        self._inline_commits = 0
        self._checkpointing = False

    def submit(self, op: Callable[[Connection], T]) -> Future[T]:
        """Queue ``op``; the future gets its result once the batch containing it committed."""
        future: Future[T] = Future()
        self._put([_Entry(op, None, None, future, None)])
        return future

    async def run(self, op: Callable[[Connection], T], timeout: float | None = None) -> T:
        """Run ``op`` in the next batch; return its result once that batch committed.
        Raises :class:`DependencyUnavailable` after ``timeout`` seconds without an answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._gather(loop, _Entry(op, None, None, future, loop, timeout))
        return await future

    async def run_grouped(
        self, group: GroupWrite[A, T], item: A, timeout: float | None = None
    ) -> T:
        """Run ``item`` with the other waiting items of ``group`` in one call of
        ``group`` in the next batch; return its result once that batch committed.
        Raises :class:`DependencyUnavailable` after ``timeout`` seconds without an answer.

        ``group`` must be quick: on SQLite it may run on the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._gather(loop, _Entry(None, group, item, future, loop, timeout))
        return await future

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _gather(self, loop: asyncio.AbstractEventLoop, entry: _Entry) -> None:
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append(entry)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop, one turn after the first write of the batch arrived."""
        live = [entry for entry in self._pending.pop(loop) if not entry.future.cancelled()]
        for start in range(0, len(live), self._max_batch):
            batch = live[start : start + self._max_batch]
            if self._inline and all(entry.group is not None for entry in batch):
                try:
                    self._commit_inline(loop, batch)
                    continue
                except WriteBusy:
                    pass
            self._arm_timers(loop, batch)
            self._put(batch)

    @staticmethod
    def _arm_timers(loop: asyncio.AbstractEventLoop, batch: list[_Entry]) -> None:
        """One timer per batch (and timeout), not one per write."""
        by_timeout: dict[float, list[_Entry]] = {}
        for entry in batch:
            if entry.timeout is not None:
                by_timeout.setdefault(entry.timeout, []).append(entry)
        for timeout, entries in by_timeout.items():
            timer = loop.call_later(timeout, _expire, entries, timeout)
            for entry in entries:
                entry.timer = timer

    def _commit_inline(self, loop: asyncio.AbstractEventLoop, batch: list[_Entry]) -> None:
        """Run ``batch`` on the loop, or raise :class:`WriteBusy` having done nothing."""
        try:
            with self._db.write_nowait() as conn:
                results = _execute(conn, batch)
        except DependencyUnavailable as exc:  # rolled back: nothing of the batch stays
            _settle([(entry, False, exc) for entry in batch])
            return
        except WriteBusy:
            raise
        except Exception:  # noqa: BLE001 - rolled back; the thread finds the culprit
            self._arm_timers(loop, batch)
            self._put(batch)
            return
        _settle([(entry, True, result) for entry, result in zip(batch, results, strict=True)])
        self._inline_commits += 1
        if self._inline_commits >= CHECKPOINT_EVERY and not self._checkpointing:
            self._inline_commits = 0
            self._checkpointing = True
            loop.run_in_executor(None, self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            self._db.checkpoint()
        except Exception as exc:  # noqa: BLE001 - the next one tries again
            log.warning("checkpoint_failed", error=repr(exc))
        finally:
            self._checkpointing = False

    def _put(self, entries: list[_Entry]) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="pushcamp-write-batcher", daemon=True
                    )
                    self._thread.start()
        self._queue.put(entries)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = list(item)
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.extend(nxt)
            live = [entry for entry in batch if entry.claim()]
            if live:
                self._commit(live)

    def _commit(self, batch: list[_Entry]) -> None:
        try:
            with self._db.write() as conn:
                results = _execute(conn, batch)
        except DependencyUnavailable as exc:
            _deliver(batch, [(False, exc)] * len(batch))
            return
        except Exception as exc:  # noqa: BLE001 - delivered to the caller(s)
            if len(batch) == 1:
                _deliver(batch, [(False, exc)])
            else:  # find the culprit: each write alone, so the others still succeed
                for one in batch:
                    self._commit([one])
            return
        _deliver(batch, [(True, result) for result in results])


def _execute(conn: Connection, batch: list[_Entry]) -> list[Any]:
    """Run every write of the batch in ``conn``'s transaction; results in batch order."""
    results: list[Any] = [None] * len(batch)
    groups: dict[GroupWrite[Any, Any], list[int]] = {}
    for i, entry in enumerate(batch):
        if entry.group is not None:
            groups.setdefault(entry.group, []).append(i)
        else:
            assert entry.op is not None
            results[i] = entry.op(conn)
    for group, indexes in groups.items():
        out = group(conn, [batch[i].item for i in indexes])
        if len(out) != len(indexes):
            raise RuntimeError(f"{group!r} returned {len(out)} results for {len(indexes)}")
        for i, result in zip(indexes, out, strict=True):
            results[i] = result
    return results


def _deliver(batch: list[_Entry], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand each caller its outcome: thread futures at once, asyncio futures with one
    call per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Entry, bool, Any]]] = {}
    for entry, (ok, value) in zip(batch, outcomes, strict=True):
        if entry.loop is None:
            assert isinstance(entry.future, Future)
            if ok:
                entry.future.set_result(value)
            else:
                entry.future.set_exception(value)
        else:
            by_loop.setdefault(entry.loop, []).append((entry, ok, value))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, settled)
