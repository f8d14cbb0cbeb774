"""Queries on subscribers. ``(partner_id, endpoint)`` is unique, so every write is an
upsert decided by the database, whatever the interleaving of concurrent subscribes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from pushcamp.domain.subscribers import NewSubscription
from pushcamp.store.models import Subscriber

_TABLE = cast(Table, Subscriber.__table__)
# Optional fields: a re-subscribe that does not send one keeps the stored value.
_KEPT_IF_ABSENT = ("language", "timezone", "browser", "os", "device")


def _upsert(dialect: str, with_attributes: bool) -> Any:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(_TABLE)
    c, new = _TABLE.c, stmt.excluded
    values: dict[str, Any] = {
        "p256dh": new.p256dh,
        "auth": new.auth,
        "updated_at": new.updated_at,
        "active": True,
        "deactivated_at": None,
        "deactivated_reason": None,
        "last_engaged_at": func.coalesce(new.last_engaged_at, c.last_engaged_at),
        # Once imported by the operator, vouched for (a later public subscribe keeps it).
        "imported_at": func.coalesce(c.imported_at, new.imported_at),
    }
    values.update({name: func.coalesce(new[name], c[name]) for name in _KEPT_IF_ABSENT})
    if with_attributes:
        values["attributes"] = new.attributes
    return stmt.on_conflict_do_update(index_elements=["partner_id", "endpoint"], set_=values)


_UPSERTS = {
    (dialect, attrs): _upsert(dialect, attrs)
    for dialect in ("postgresql", "sqlite")
    for attrs in (True, False)
}


def _row(
    partner_id: str,
    sub: NewSubscription,
    now: datetime,
    engaged: datetime | None,
    imported: bool,
) -> dict[str, Any]:
    return {
        "partner_id": partner_id,
        "endpoint": sub.endpoint,
        "p256dh": sub.p256dh,
        "auth": sub.auth,
        "language": sub.language,
        "timezone": sub.timezone,
        "browser": sub.browser,
        "os": sub.os,
        "device": sub.device,
        "attributes": sub.attributes if sub.attributes is not None else {},
        "active": True,
        "created_at": now,
        "updated_at": now,
        "last_engaged_at": sub.last_engaged_at or engaged,
        "imported_at": now if imported else None,
    }


def upsert_subscriptions(
    conn: Connection,
    partner_id: str,
    subs: Sequence[NewSubscription],
    now: datetime,
    engaged_at: datetime | None = None,
    *,
    imported: bool = False,
) -> None:
    """Insert or update (by endpoint) a batch of subscriptions; each becomes active again.
    ``engaged_at`` is the engagement time for rows that do not carry their own (None:
    leave it as stored). Attributes are replaced only where the subscription sent some.
    ``imported``: the operator vouches for these rows (``pushcamp subscribers import``)."""
    dialect = conn.dialect.name
    for with_attrs in (True, False):
        rows = [
            _row(partner_id, s, now, engaged_at, imported)
            for s in subs
            if (s.attributes is not None) is with_attrs
        ]
        if rows:
            conn.execute(_UPSERTS[dialect, with_attrs], rows)


def get_subscriber_id(conn: Connection, partner_id: str, endpoint: str) -> int | None:
    return conn.execute(
        select(Subscriber.id).where(
            Subscriber.partner_id == partner_id, Subscriber.endpoint == endpoint
        )
    ).scalar_one_or_none()


def get_attributes(conn: Connection, partner_id: str, endpoint: str) -> dict[str, str] | None:
    return conn.execute(
        select(Subscriber.attributes).where(
            Subscriber.partner_id == partner_id, Subscriber.endpoint == endpoint
        )
    ).scalar_one_or_none()


def deactivate(
    conn: Connection, partner_id: str, endpoint: str, reason: str, now: datetime
) -> bool:
    """Mark the partner's subscription with this endpoint inactive; False if none was
    active."""
    result = conn.execute(
        update(Subscriber)
        .where(
            Subscriber.partner_id == partner_id,
            Subscriber.endpoint == endpoint,
            Subscriber.active.is_(True),
        )
        .values(active=False, deactivated_at=now, deactivated_reason=reason, updated_at=now)
    )
    return result.rowcount == 1


def deactivate_ids(
    conn: Connection, partner_id: str, ids: Sequence[int], reason: str, now: datetime
) -> int:
    """Deactivate subscriptions by id (the sender's 404/410 path)."""
    if not ids:
        return 0
    result = conn.execute(
        update(Subscriber)
        .where(Subscriber.partner_id == partner_id, Subscriber.id.in_(list(ids)))
        .values(active=False, deactivated_at=now, deactivated_reason=reason, updated_at=now)
    )
    return result.rowcount


def touch_engagement(
    conn: Connection,
    partner_id: str,
    now: datetime,
    *,
    endpoint: str | None = None,
    subscriber_id: int | None = None,
) -> bool:
    """Record engagement (a click or a site visit) of one subscription."""
    stmt = update(Subscriber).where(Subscriber.partner_id == partner_id)
    if endpoint is not None:
        stmt = stmt.where(Subscriber.endpoint == endpoint)
    elif subscriber_id is not None:
        stmt = stmt.where(Subscriber.id == subscriber_id)
    else:
        raise ValueError("endpoint or subscriber_id is required")
    return conn.execute(stmt.values(last_engaged_at=now)).rowcount == 1


def count_subscribers(conn: Connection, partner_id: str, active_only: bool = True) -> int:
    stmt = select(func.count()).select_from(Subscriber).where(Subscriber.partner_id == partner_id)
    if active_only:
        stmt = stmt.where(Subscriber.active.is_(True))
    return int(conn.execute(stmt).scalar_one())


def get_carry_over(conn: Connection, partner_id: str, endpoint: str) -> Any:
    """What a replacing subscription inherits from the partner's row for ``endpoint``
    (a row with ``language``, ``timezone``, ``attributes``, ``last_engaged_at``), or None."""
    return conn.execute(
        select(
            Subscriber.language,
            Subscriber.timezone,
            Subscriber.attributes,
            Subscriber.last_engaged_at,
        ).where(Subscriber.partner_id == partner_id, Subscriber.endpoint == endpoint)
    ).one_or_none()
