"""Queries on events (what service workers reported about deliveries)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    SmallInteger,
    String,
    bindparam,
    exists,
    insert,
    select,
)
from sqlalchemy.engine import Connection

from pushcamp.store.models import Event, Launch

# INSERT ... SELECT the event's values WHERE the launch is the partner's: the ownership
# check and the write are one statement, so nothing can change between them.
_INSERT_IF_OWNED = (
    insert(Event)
    .from_select(
        ["partner_id", "launch_id", "subscriber_id", "type", "action", "created_at"],
        select(
            bindparam("partner_id", type_=String),
            bindparam("launch_id", type_=BigInteger),
            bindparam("subscriber_id", type_=BigInteger),
            bindparam("type", type_=String),
            bindparam("action", type_=SmallInteger),
            bindparam("created_at", type_=DateTime(timezone=True)),
        ).where(
            exists().where(
                Launch.id == bindparam("launch_id", type_=BigInteger),
                Launch.partner_id == bindparam("partner_id", type_=String),
            )
        ),
    )
    .returning(Event.id)
)


def insert_event(
    conn: Connection,
    partner_id: str,
    launch_id: int,
    subscriber_id: int,
    event_type: str,
    now: datetime,
    action: int | None = None,
) -> bool:
    """Record one event if ``launch_id`` is a launch of ``partner_id``; False (nothing
    written) otherwise. ``action``: the button a click was on (None: the notification).
    A second one for the same (launch, subscriber, type) raises ``IntegrityError`` from
    the unique index ``uq_events_once``: the caller refuses it."""
    inserted = conn.execute(
        _INSERT_IF_OWNED,
        {
            "partner_id": partner_id,
            "launch_id": launch_id,
            "subscriber_id": subscriber_id,
            "type": event_type,
            "action": action,
            "created_at": now,
        },
    ).scalar_one_or_none()
    return inserted is not None


def action_count(conn: Connection, partner_id: str, launch_id: int) -> int | None:
    """How many action buttons the launch's notification has; None when ``launch_id`` is
    not a launch of ``partner_id``."""
    request = conn.execute(
        select(Launch.request).where(Launch.id == launch_id, Launch.partner_id == partner_id)
    ).scalar_one_or_none()
    if request is None:
        return None
    actions = request.get("actions") if isinstance(request, dict) else None
    return len(actions) if isinstance(actions, list) else 0
