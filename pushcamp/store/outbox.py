"""The outbox of the Celery runner: a launch's batch plan, written in the transaction
that records the launch, is handed to the broker one task per batch by whichever process
notices it, and ``launch_batches.published_at`` says when. A launch recorded while the
broker is down is published when it is back: nothing but this table remembers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection

from pushcamp.store.launches import BATCH_CLAIMED, BATCH_DONE, BATCH_PENDING, batch_due
from pushcamp.store.models import Launch, LaunchBatch


def due_for_publishing(
    conn: Connection,
    runnable: Sequence[str],
    now: datetime,
    republish_before: datetime,
    limit: int,
) -> list[int]:
    """Batches of runnable launches a worker should be told of, oldest first:

    * pending and never published (a new launch; a batch given back after a pause, a
      stop of its worker or a resume clears the mark);
    * pending and published before ``republish_before``: its task was lost on the way
      (a broker that restarted without its data), so it is handed over again;
    * claimed under a lease that ran out since it was last published: the worker died
      (the broker redelivers its task too; whichever comes first claims the batch).

    On PostgreSQL the rows are locked (``SKIP LOCKED``) until the caller commits, so
    two publishers never hand over the same batch at once."""
    pending = and_(
        LaunchBatch.status == BATCH_PENDING,
        batch_due(now),  # a local-time or deferred batch is handed over when it is due
        or_(LaunchBatch.published_at.is_(None), LaunchBatch.published_at < republish_before),
    )
    orphaned = and_(
        LaunchBatch.status == BATCH_CLAIMED,
        LaunchBatch.claimed_until < now,
        or_(
            LaunchBatch.published_at.is_(None),
            LaunchBatch.published_at < LaunchBatch.claimed_until,
        ),
    )
    stmt = (
        select(LaunchBatch.id)
        .join(Launch, Launch.id == LaunchBatch.launch_id)
        .where(Launch.status.in_(list(runnable)), or_(pending, orphaned))
        .order_by(LaunchBatch.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=LaunchBatch, skip_locked=True)
    return [int(i) for i in conn.execute(stmt).scalars()]


def mark_published(conn: Connection, batch_ids: Sequence[int], now: datetime) -> None:
    if batch_ids:
        conn.execute(
            update(LaunchBatch).where(LaunchBatch.id.in_(list(batch_ids))).values(published_at=now)
        )


def unmark_published(conn: Connection, batch_ids: Sequence[int]) -> None:
    """These batches' tasks never reached the broker: publish them at the next round."""
    if batch_ids:
        conn.execute(
            update(LaunchBatch).where(LaunchBatch.id.in_(list(batch_ids))).values(published_at=None)
        )


def unpublish_launch(conn: Connection, launch_id: int) -> None:
    """Every unfinished batch of the launch is to be handed to the broker again (a
    resume: tasks that arrived while it was paused were dropped)."""
    conn.execute(
        update(LaunchBatch)
        .where(LaunchBatch.launch_id == launch_id, LaunchBatch.status != BATCH_DONE)
        .values(published_at=None)
    )
