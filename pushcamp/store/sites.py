"""Queries on a partner's site and audience settings (the partner row's columns that the
public endpoints and the audience builder read)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from pushcamp.store.models import Partner


@dataclass(frozen=True, slots=True)
class AudienceSettings:
    engagement_days: int
    # None: off.
    frequency_cap: int | None
    silent_start: int | None
    silent_end: int | None
    # "drop" or "defer" (docs/delivery.md); the zone of subscribers without one (None: UTC).
    silent_hours_mode: str = "drop"
    default_timezone: str | None = None


def get_audience(conn: Connection, partner_id: str) -> AudienceSettings | None:
    row = conn.execute(
        select(
            Partner.engagement_days,
            Partner.frequency_cap,
            Partner.silent_start,
            Partner.silent_end,
            Partner.silent_hours_mode,
            Partner.default_timezone,
        ).where(Partner.id == partner_id)
    ).one_or_none()
    return AudienceSettings(*row) if row else None


def update_audience(conn: Connection, partner_id: str, values: dict[str, int | str | None]) -> bool:
    """Set some of ``engagement_days``, ``frequency_cap``, ``silent_start``/``silent_end``;
    False when the partner does not exist."""
    stmt = update(Partner).where(Partner.id == partner_id)
    if not values:
        return conn.execute(select(Partner.id).where(Partner.id == partner_id)).first() is not None
    return conn.execute(stmt.values(**values)).rowcount == 1


def site_origins_by_partner(conn: Connection) -> dict[str, list[str]]:
    return {
        pid: list(origins or ())
        for pid, origins in conn.execute(select(Partner.id, Partner.site_origins)).all()
    }
