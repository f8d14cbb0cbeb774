"""Read queries of the panel: the Web Push listing and the subscriber breakdowns. Every
query is scoped to its partner inside the query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.engine import Connection

from pushcamp.store.models import Campaign, Partner, Subscriber


@dataclass(frozen=True, slots=True)
class ListedCampaign:
    id: int
    title: str
    language: str
    status: str
    created_at: datetime


def _like_pattern(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_panel_campaigns(
    conn: Connection, partner_id: str, search: str, offset: int, limit: int
) -> tuple[int, list[ListedCampaign]]:
    """The partner's live ``is_all`` campaigns whose title contains ``search`` (any case),
    newest first: the total and one page."""
    where: list[ColumnElement[bool]] = [
        Campaign.partner_id == partner_id,
        Campaign.is_all.is_(True),
        Campaign.deleted_at.is_(None),
    ]
    if search:
        where.append(Campaign.title.ilike(_like_pattern(search), escape="\\"))
    total = conn.execute(select(func.count()).select_from(Campaign).where(*where)).scalar_one()
    rows = conn.execute(
        select(Campaign.id, Campaign.title, Campaign.language, Campaign.status, Campaign.created_at)
        .where(*where)
        .order_by(Campaign.created_at.desc(), Campaign.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return int(total), [ListedCampaign(*r) for r in rows]


BREAKDOWN_COLUMNS = {
    "language": Subscriber.language,
    "browser": Subscriber.browser,
    "os": Subscriber.os,
    "device": Subscriber.device,
}


def count_by(
    conn: Connection, partner_id: str, column: str, limit: int = 20
) -> list[tuple[str | None, int]]:
    """Active subscribers of the partner counted by one attribute, largest first."""
    col = BREAKDOWN_COLUMNS[column]
    n = func.count().label("n")
    rows = conn.execute(
        select(col, n)
        .where(Subscriber.partner_id == partner_id, Subscriber.active.is_(True))
        .group_by(col)
        .order_by(n.desc(), col)
        .limit(limit)
    ).all()
    return [(r[0], int(r[1])) for r in rows]


def count_engaged(conn: Connection, partner_id: str, since: datetime) -> tuple[int, int]:
    """Active subscribers engaged since ``since`` and the others."""
    engaged = func.sum(case((Subscriber.last_engaged_at >= since, 1), else_=0))
    row = conn.execute(
        select(func.count(), engaged).where(
            Subscriber.partner_id == partner_id, Subscriber.active.is_(True)
        )
    ).one()
    total, yes = int(row[0]), int(row[1] or 0)
    return yes, total - yes


def _utc_day(conn: Connection, column: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def new_per_day(conn: Connection, partner_id: str, since: datetime) -> tuple[int, dict[date, int]]:
    """Subscriptions created before ``since``, and those created each UTC day after."""
    before = conn.execute(
        select(func.count()).where(
            Subscriber.partner_id == partner_id, Subscriber.created_at < since
        )
    ).scalar_one()
    day = _utc_day(conn, Subscriber.created_at).label("day")
    rows = conn.execute(
        select(day, func.count())
        .where(Subscriber.partner_id == partner_id, Subscriber.created_at >= since)
        .group_by(day)
    ).all()
    per_day: dict[date, int] = {}
    for value, count in rows:
        key = value if isinstance(value, date) else date.fromisoformat(str(value))
        per_day[key] = int(count)
    return int(before), per_day


@dataclass(frozen=True, slots=True)
class PanelPartner:
    id: str
    name: str
    v1_limit: int
    v2_limit: int
    site_origins: tuple[str, ...]
    engagement_days: int
    frequency_cap: int | None
    silent_start: int | None
    silent_end: int | None


def get_panel_partner(conn: Connection, partner_id: str) -> PanelPartner | None:
    row = conn.execute(
        select(
            Partner.id,
            Partner.name,
            Partner.v1_limit,
            Partner.v2_limit,
            Partner.site_origins,
            Partner.engagement_days,
            Partner.frequency_cap,
            Partner.silent_start,
            Partner.silent_end,
        ).where(Partner.id == partner_id)
    ).one_or_none()
    if row is None:
        return None
    return PanelPartner(
        id=row[0],
        name=row[1],
        v1_limit=row[2],
        v2_limit=row[3],
        site_origins=tuple(row[4] or ()),
        engagement_days=row[5],
        frequency_cap=row[6],
        silent_start=row[7],
        silent_end=row[8],
    )
