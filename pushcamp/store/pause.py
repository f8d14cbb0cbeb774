"""The pause rule's counters, kept in the database so that every worker sending a launch
counts towards (and sees) the same pause: ``launches.attempts`` and ``launch_refusals``.

They are written in the transaction that writes the delivery records they count, so a
crash loses neither without the other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, select, update
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


def _add_refusals(dialect: str) -> Any:
    table = LaunchRefusal.__table__
    assert isinstance(table, Table)
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    return stmt.on_conflict_do_update(
        index_elements=["launch_id", "reason"],
        set_={"count": table.c["count"] + stmt.excluded["count"]},
    )


# Built once, with bind parameters: a statement built per call is matched to SQLAlchemy's
# cached compiled form column by column before it runs, which cost more than running it
# (three statements per group of records the engine writes).
_ADD_ATTEMPTS = (
    update(Launch)
    .where(Launch.id == bindparam("launch_id"))
    .values(attempts=Launch.attempts + bindparam("attempts"))
    .returning(Launch.attempts)
)
_ADD_REFUSALS = {name: _add_refusals(name) for name in ("postgresql", "sqlite")}
_TOP_REFUSAL = (
    select(LaunchRefusal.reason, LaunchRefusal.count)
    .where(LaunchRefusal.launch_id == bindparam("launch_id"))
    .order_by(LaunchRefusal.count.desc(), LaunchRefusal.reason)
    .limit(1)
)


def add_to_tally(
    conn: Connection, launch_id: int, attempts: int, refusals: Mapping[str, int]
) -> PauseTally:
    """Add this group's attempts and refusals to the launch's counters; return the
    counters as they now stand (this transaction's view: on PostgreSQL the launch row
    stays locked until commit, so concurrent groups are added one after the other)."""
    total = conn.execute(
        _ADD_ATTEMPTS, {"launch_id": launch_id, "attempts": attempts}
    ).scalar_one_or_none()
    if refusals:
        # Keyed by the stored (cut) reason: two reasons alike in their first
        # REASON_CHARS are one counter, and one statement may not upsert a row twice.
        counts: Counter[str] = Counter()
        for reason, n in refusals.items():
            counts[reason[:REASON_CHARS]] += n
        conn.execute(
            _ADD_REFUSALS[conn.dialect.name],
            [
                {"launch_id": launch_id, "reason": reason, "count": n}
                for reason, n in sorted(counts.items())
            ],
        )
    top = conn.execute(_TOP_REFUSAL, {"launch_id": launch_id}).one_or_none()
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
