"""The outbox publisher of the Celery runner: hands batches recorded in the database to
the broker, one task per batch, once their mark as published is committed.

It runs in the API process and in every worker, so whichever process is up notices a
launch: one recorded while the broker was down is published when the broker is back
(publishing fails, the marks of the batches not handed over are taken back, the next
round tries again). A task published twice is harmless: the worker claims the batch under a
lease first (``store.launches.claim_batch_by_id``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.engine import Connection

from pushcamp.delivery.engine import RUNNABLE
from pushcamp.delivery.schedule import start_due_launches
from pushcamp.logs import get_logger
from pushcamp.store import Database
from pushcamp.store import outbox as outbox_q
from pushcamp.store.models import utcnow

log = get_logger("pushcamp.delivery")

# Batches handed over per transaction (their rows stay locked meanwhile on PostgreSQL;
# on SQLite the write lock is held, so a round is kept short).
ROUND = 100


class OutboxPublisher:
    """Publishes due batches every ``poll_seconds``, or at once when woken."""

    def __init__(
        self,
        db: Database,
        publish: Callable[[int], None],
        *,
        poll_seconds: float = 1.0,
        republish_seconds: float = 600.0,
    ) -> None:
        self.db = db
        self.publish = publish  # hands one batch id to the broker; raises if it cannot
        self.poll_seconds = poll_seconds
        self.republish = timedelta(seconds=republish_seconds)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failing = False
        self.published = 0  # batches this process handed over (logs, tests)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await asyncio.to_thread(self.publish_round):
                    pass
            except Exception as exc:
                self._note_failure(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    def publish_round(self) -> int:
        """Hand over up to ROUND due batches (blocking); how many were published."""
        with self.db.write() as conn:
            # Scheduled launches that are due get their plan now (delivery/schedule.py);
            # before that they have no batch to publish.
            start_due_launches(conn, utcnow())
            ids = self._due(conn)
            outbox_q.mark_published(conn, ids, utcnow())
        # Tasks are handed over only once that is committed: a task published inside the
        # transaction could reach a worker before the commit, find its batch not there yet
        # (a scheduled launch's plan is written in the same transaction) or its launch not
        # yet Queued, and be dropped, leaving the batch to the republish timer. A crash
        # between the commit and the broker leaves the same: marked, republished later.
        handed = 0
        try:
            for batch_id in ids:
                self.publish(batch_id)
                handed += 1
        except Exception:
            with self.db.write() as conn:  # the rest go back to the outbox at once
                outbox_q.unmark_published(conn, ids[handed:])
            raise
        if ids:
            self.published += len(ids)
            log.info("batches_published", count=len(ids), first_batch_id=ids[0])
        if self.failing:
            self.failing = False
            log.info("publishing_again")
        return len(ids)

    def _due(self, conn: Connection) -> list[int]:
        now = utcnow()
        return outbox_q.due_for_publishing(conn, RUNNABLE, now, now - self.republish, ROUND)

    def _note_failure(self, exc: Exception) -> None:
        if not self.failing:
            log.warning("publish_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        self.failing = True
