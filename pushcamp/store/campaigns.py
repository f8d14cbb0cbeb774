"""Queries on campaigns. Every lookup is scoped to its partner inside the query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
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


def insert_campaign(
    conn: Connection, partner_id: str, title: str, language: str, is_all: bool, status: str
) -> int:
    """Insert and return the new id. A live duplicate title raises IntegrityError from the
    partial unique index, whatever the interleaving of concurrent requests."""
    now = utcnow()
    return int(
        conn.execute(
            insert(Campaign)
            .values(
                partner_id=partner_id,
                title=title,
                language=language,
                is_all=is_all,
                status=status,
                created_at=now,
                updated_at=now,
            )
            .returning(Campaign.id)
        ).scalar_one()
    )


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
