"""The pause rule's counters, kept in the database so that every worker sending a launch
counts towards (and sees) the same pause: ``launches.attempts`` and ``launch_refusals``.

They are written in the transaction that writes the delivery records they count, so a
crash loses neither without the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from pushcamp.store.models import Launch, LaunchRefusal

# The longest reason key stored (status and the start of the push service's reason).
REASON_CHARS = 128


@dataclass(frozen=True, slots=True)
class PauseTally:
    """A launch's counters after a write: messages tried, and its most frequent refusal
    that says the sender is wrong (``top_reason``, None when there is none yet)."""

    attempts: int
    top_reason: str | None
    top_count: int


def add_to_tally(
    conn: Connection, launch_id: int, attempts: int, refusals: Mapping[str, int]
) -> PauseTally:
    """Add this group's attempts and refusals to the launch's counters; return the
    counters as they now stand (this transaction's view: on PostgreSQL the launch row
    stays locked until commit, so concurrent groups are added one after the other)."""
    total = conn.execute(
        update(Launch)
        .where(Launch.id == launch_id)
        .values(attempts=Launch.attempts + attempts)
        .returning(Launch.attempts)
    ).scalar_one_or_none()
    if refusals:
        table = LaunchRefusal.__table__
        assert isinstance(table, Table)
        insert_fn = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert_fn(table).values(
            [
                {"launch_id": launch_id, "reason": reason[:REASON_CHARS], "count": n}
                for reason, n in refusals.items()
            ]
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["launch_id", "reason"],
                set_={"count": table.c["count"] + stmt.excluded["count"]},
            )
        )
    top = conn.execute(
        select(LaunchRefusal.reason, LaunchRefusal.count)
        .where(LaunchRefusal.launch_id == launch_id)
        .order_by(LaunchRefusal.count.desc(), LaunchRefusal.reason)
        .limit(1)
    ).one_or_none()
    return PauseTally(
        attempts=int(total or 0),
        top_reason=None if top is None else str(top[0]),
        top_count=0 if top is None else int(top[1]),
    )


def reset_tally(conn: Connection, launch_id: int) -> None:
    """Start counting afresh (a resume: the refusals that paused it are tried again)."""
    conn.execute(update(Launch).where(Launch.id == launch_id).values(attempts=0))
    conn.execute(delete(LaunchRefusal).where(LaunchRefusal.launch_id == launch_id))


def refusal_total(conn: Connection, launch_id: int) -> int:
    """All refusals counted for the launch (tests and diagnostics)."""
    return int(
        conn.execute(
            select(func.coalesce(func.sum(LaunchRefusal.count), 0)).where(
                LaunchRefusal.launch_id == launch_id
            )
        ).scalar_one()
    )
