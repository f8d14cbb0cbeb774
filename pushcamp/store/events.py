"""Queries on events (what service workers reported about deliveries)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from pushcamp.store.models import Event


def insert_event(
    conn: Connection,
    partner_id: str,
    launch_id: int,
    subscriber_id: int,
    event_type: str,
    now: datetime,
) -> None:
    """Record one event. A second one for the same (launch, subscriber, type) raises
    ``IntegrityError`` from the unique index ``uq_events_once``: the caller refuses it."""
    conn.execute(
        insert(Event).values(
            partner_id=partner_id,
            launch_id=launch_id,
            subscriber_id=subscriber_id,
            type=event_type,
            created_at=now,
        )
    )
