"""Queries on campaigns. Every lookup is scoped to its partner inside the query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

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


def _insert_new_title(dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id``: a live duplicate title (the
    partial unique index) yields no row instead of an error, so the statement never
    breaks the transaction it runs in (see store.batch)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = Campaign.__table__
    assert isinstance(table, Table)
    return insert(table).on_conflict_do_nothing().returning(table.c.id)


_INSERT_NEW_TITLE = {name: _insert_new_title(name) for name in ("postgresql", "sqlite")}


def insert_campaign(
    conn: Connection, partner_id: str, title: str, language: str, is_all: bool, status: str
) -> int | None:
    """Insert and return the new id, or None if a live campaign of the partner already
    has this title — decided by the unique index, whatever the interleaving of
    concurrent requests."""
    now = utcnow()
    row = conn.execute(
        _INSERT_NEW_TITLE[conn.dialect.name],
        {
            "partner_id": partner_id,
            "title": title,
            "language": language,
            "is_all": is_all,
            "status": status,
            "created_at": now,
            "updated_at": now,
        },
    ).first()
    return None if row is None else int(row[0])


def get_campaign(conn: Connection, partner_id: str, campaign_id: int) -> CampaignRow | None:
    row = conn.execute(
        select(
            Campaign.id,
            Campaign.partner_id,
            Campaign.title,
            Campaign.language,
            Campaign.is_all,
            Campaign.status,
            Campaign.created_at,
            Campaign.deleted_at,
        ).where(Campaign.partner_id == partner_id, Campaign.id == campaign_id)
    ).one_or_none()
    return CampaignRow(*row) if row else None


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
