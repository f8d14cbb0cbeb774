"""Group commit: many small writes from concurrent requests in one transaction.

A commit is the expensive part of a small write (a WAL append and, on PostgreSQL, an
fsync), and on SQLite writers queue for one lock anyway. ``WriteBatcher`` runs writes
on one thread: it takes every write that is waiting (up to ``max_batch``), runs them in
a single transaction and commits once; each caller's future resolves only after that
commit, so an acknowledged write is durable exactly as if it had its own transaction.

Failure isolation: an op must not break the transaction on an expected outcome (use
``ON CONFLICT DO NOTHING`` and the like). If one op raises anyway, the batch is rolled
back and every op is re-run in a transaction of its own, so one bad op never fails its
neighbours. If the database itself fails, every op of the batch gets
:class:`DependencyUnavailable` and nothing of the batch is committed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from pushcamp.errors import DependencyUnavailable

T = TypeVar("T")
Op = Callable[[Connection], Any]


class WriteBatcher:
    def __init__(self, db: Any, max_batch: int = 256) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Op, Future[Any]] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, op: Callable[[Connection], T]) -> Future[T]:
        """Queue ``op``; the future gets its result once the batch containing it committed."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="pushcamp-write-batcher", daemon=True
                    )
                    self._thread.start()
        future: Future[T] = Future()
        self._queue.put((op, future))
        return future

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(nxt)
            live = [(op, fut) for op, fut in batch if fut.set_running_or_notify_cancel()]
            if live:
                self._commit(live)

    def _commit(self, batch: list[tuple[Op, Future[Any]]]) -> None:
        try:
            with self._db.write() as conn:
                results = [op(conn) for op, _ in batch]
        except DependencyUnavailable as exc:
            for _, fut in batch:
                fut.set_exception(exc)
            return
        except Exception as exc:  # noqa: BLE001 - delivered to the caller(s)
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
            else:  # find the culprit: each op alone, so the others still succeed
                for one in batch:
                    self._commit([one])
            return
        for (_, fut), result in zip(batch, results, strict=True):
            fut.set_result(result)
