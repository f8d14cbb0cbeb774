"""Queries on campaigns. Every lookup is scoped to its partner inside the query."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.engine import Connection, Dialect

from pushcamp.store.models import Campaign, utcnow


@dataclass(frozen=True, slots=True)
class CampaignRow:
    id: int
    partner_id: str
    title: str
    language: str
    is_all: bool
    status: str
    created_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewCampaignRow:
    partner_id: str
    title: str
    language: str
    is_all: bool
    status: str


_INSERT_COLUMNS = (
    "partner_id",
    "title",
    "language",
    "is_all",
    "status",
    "created_at",
    "updated_at",
)


@lru_cache(maxsize=512)  # both parameter styles, every batch size
def _insert_sql(paramstyle: str, rows: int) -> str:
    """``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING RETURNING id, partner_id,
    title`` for ``rows`` rows: a live duplicate title (the partial unique index) yields no
    row instead of an error, so the statement never breaks the transaction it runs in
    (see store.batch)."""
    mark = "?" if paramstyle == "qmark" else "%s"
    row = "(" + ", ".join([mark] * len(_INSERT_COLUMNS)) + ")"
    return (
        f"INSERT INTO {Campaign.__tablename__} ({', '.join(_INSERT_COLUMNS)}) "
        f"VALUES {', '.join([row] * rows)} "
        "ON CONFLICT DO NOTHING RETURNING id, partner_id, title"
    )


def _identity(value: Any) -> Any:
    return value


@lru_cache(maxsize=4)
def _bind_processors(dialect: Dialect) -> tuple[Callable[[Any], Any], ...]:
    """The column types' own conversions (SQLite keeps booleans as 0/1 and datetimes as
    text in SQLAlchemy's format), since the statement is passed to the driver as is."""
    table = Campaign.__table__
    assert isinstance(table, Table)
    return tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) or _identity
        for name in _INSERT_COLUMNS
    )


def insert_campaigns(conn: Connection, rows: Sequence[NewCampaignRow]) -> list[int | None]:
    """Insert the rows in one statement; for each, its new id, or None if a live campaign
    of the partner already has this title — decided by the unique index, whatever the
    interleaving of concurrent requests.

    Same as inserting them one by one in order: a title that repeats within ``rows`` is
    inserted for its first row only and the later ones are duplicates. That also makes
    every ``(partner_id, title)`` in the statement distinct, so the returned rows (whose
    order neither SQLite nor PostgreSQL promises) map back to their rows by that pair.
    """
    if not rows:
        return []
    partner_id_, title_, language_, is_all_, status_, created_, updated_ = _bind_processors(
        conn.dialect
    )
    now = utcnow()
    created_at, updated_at = created_(now), updated_(now)
    first: dict[tuple[str, str], int] = {}
    params: list[Any] = []
    for i, row in enumerate(rows):
        key = (row.partner_id, row.title)
        if key in first:
            continue
        first[key] = i
        params += (
            partner_id_(row.partner_id),
            title_(row.title),
            language_(row.language),
            is_all_(row.is_all),
            status_(row.status),
            created_at,
            updated_at,
        )
    inserted = {
        (partner_id, title): int(id_)
        for id_, partner_id, title in conn.exec_driver_sql(
            _insert_sql(conn.dialect.paramstyle, len(first)), tuple(params)
        )
    }
    return [
        inserted.get(key) if first[key] == i else None
        for i, key in enumerate((row.partner_id, row.title) for row in rows)
    ]


def get_campaign(
    conn: Connection, partner_id: str, campaign_id: int, *, for_update: bool = False
) -> CampaignRow | None:
    """The partner's campaign. ``for_update`` locks its row until the transaction ends
    (PostgreSQL; SQLite's write transactions are serial anyway), so that a launch and a
    delete of the same campaign cannot interleave."""
    stmt = select(
        Campaign.id,
        Campaign.partner_id,
        Campaign.title,
        Campaign.language,
        Campaign.is_all,
        Campaign.status,
        Campaign.created_at,
        Campaign.deleted_at,
    ).where(Campaign.partner_id == partner_id, Campaign.id == campaign_id)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).one_or_none()
    return CampaignRow(*row) if row else None


def set_status(conn: Connection, campaign_id: int, status: str, now: datetime) -> None:
    """A live campaign's new status (a deleted one keeps ``Deleted``)."""
    conn.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.deleted_at.is_(None))
        .values(status=status, updated_at=now)
    )


def mark_deleted(conn: Connection, partner_id: str, campaign_id: int, status: str) -> bool:
    now = utcnow()
    result = conn.execute(
        update(Campaign)
        .where(
            Campaign.partner_id == partner_id,
            Campaign.id == campaign_id,
            Campaign.deleted_at.is_(None),
        )
        .values(deleted_at=now, updated_at=now, status=status)
    )
    return result.rowcount == 1
