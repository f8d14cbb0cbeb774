"""Queries on webhooks and their outbox (``webhook_events``).

:func:`emit` is what the places where events happen call, inside their own transaction:
one row per webhook of the partner, so an event is written exactly when what it reports
is (none lost, none invented by a rollback). The dispatcher claims a webhook's due rows
under a lease (PostgreSQL skips rows other dispatchers hold locked, like the launch
batches), posts them, and records the outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from pushcamp.domain.webhooks import LAUNCH_FINISHED, LAUNCH_PAUSED, LAUNCH_STARTED, UNSUBSCRIBED
from pushcamp.store import launches as launches_q
from pushcamp.store.models import Launch, Subscriber, Webhook, WebhookEvent, utcnow

PENDING = "pending"
DONE = "done"
DEAD = "dead"


@dataclass(frozen=True, slots=True)
class WebhookRow:
    id: int
    partner_id: str
    url: str
    secret: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    webhook_id: int
    event_id: str
    type: str
    data: dict[str, Any]
    created_at: datetime
    attempts: int
    first_attempt_at: datetime | None
    last_error: str | None = None
    finished_at: datetime | None = None


_WEBHOOK_COLUMNS = (Webhook.id, Webhook.partner_id, Webhook.url, Webhook.secret, Webhook.created_at)
_EVENT_COLUMNS = (
    WebhookEvent.id,
    WebhookEvent.webhook_id,
    WebhookEvent.event_id,
    WebhookEvent.type,
    WebhookEvent.data,
    WebhookEvent.created_at,
    WebhookEvent.attempts,
    WebhookEvent.first_attempt_at,
    WebhookEvent.last_error,
    WebhookEvent.finished_at,
)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _event(row: Any) -> EventRow:
    m = dict(row._mapping)
    for key in ("created_at", "first_attempt_at", "finished_at"):
        m[key] = _aware(m[key])
    return EventRow(**m)


# --- emitting (called inside the transaction of what is reported) ----------------------


def emit(conn: Connection, partner_id: str, event_type: str, data: dict[str, Any]) -> int:
    """Write the event for every webhook of the partner; returns how many rows."""
    return emit_many(conn, partner_id, event_type, [data])


def emit_many(
    conn: Connection, partner_id: str, event_type: str, items: Sequence[dict[str, Any]]
) -> int:
    if not items:
        return 0
    hooks = conn.execute(select(Webhook.id).where(Webhook.partner_id == partner_id)).scalars().all()
    if not hooks:
        return 0
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for data in items:
        event_id = f"evt_{uuid.uuid4().hex}"
        rows.extend(
            {
                "webhook_id": hook,
                "event_id": event_id,
                "type": event_type,
                "data": data,
                "created_at": now,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
            }
            for hook in hooks
        )
    conn.execute(insert(WebhookEvent), rows)
    return len(rows)


def emit_launch(conn: Connection, launch_id: int, event_type: str) -> int:
    """A launch's ``launch.started``, ``launch.finished`` or ``launch.paused``."""
    row = conn.execute(
        select(
            Launch.partner_id,
            Launch.campaign_id,
            Launch.status,
            Launch.paused_reason,
            Launch.batches_total,
        ).where(Launch.id == launch_id)
    ).one_or_none()
    if row is None:
        return 0
    data: dict[str, Any] = {
        "launch_id": launch_id,
        "campaign_id": int(row.campaign_id),
        "status": row.status,
    }
    if event_type == LAUNCH_PAUSED and row.paused_reason:
        data["reason"] = row.paused_reason
    assert event_type in (LAUNCH_STARTED, LAUNCH_FINISHED, LAUNCH_PAUSED)
    return emit(conn, str(row.partner_id), event_type, data)


def set_launch_status(
    conn: Connection, event_type: str, launch_id: int, status: str, **kwargs: Any
) -> bool:
    """``launches.set_status``, emitting ``event_type`` for the launch when it changed."""
    changed = launches_q.set_status(conn, launch_id, status, **kwargs)
    if changed:
        emit_launch(conn, launch_id, event_type)
    return changed


def emit_subscriber_event(
    conn: Connection,
    partner_id: str,
    event_type: str,
    subscriber_ids: Sequence[int],
    **fields: Any,
) -> int:
    """``notification.delivered``/``clicked`` or ``subscriber.gone``/``unsubscribed`` for
    these subscribers of the partner, each with its endpoint (how the partner's own
    systems know a browser) and ``fields`` (launch_id, action...)."""
    if not subscriber_ids or not _has_webhooks(conn, partner_id):
        return 0
    rows = conn.execute(
        select(Subscriber.id, Subscriber.endpoint).where(
            Subscriber.partner_id == partner_id, Subscriber.id.in_(list(subscriber_ids))
        )
    ).all()
    items = [{"subscriber_id": int(r.id), "endpoint": r.endpoint, **fields} for r in rows]
    return emit_many(conn, partner_id, event_type, items)


def emit_unsubscribed(conn: Connection, partner_id: str, endpoint: str) -> int:
    """``subscriber.unsubscribed`` for the partner's subscription with this endpoint."""
    if not _has_webhooks(conn, partner_id):
        return 0
    found = conn.execute(
        select(Subscriber.id).where(
            Subscriber.partner_id == partner_id, Subscriber.endpoint == endpoint
        )
    ).scalar_one_or_none()
    if found is None:
        return 0
    return emit_subscriber_event(conn, partner_id, UNSUBSCRIBED, [int(found)])


def _has_webhooks(conn: Connection, partner_id: str) -> bool:
    found = conn.execute(
        select(Webhook.id).where(Webhook.partner_id == partner_id).limit(1)
    ).scalar_one_or_none()
    return found is not None


# --- webhooks ---------------------------------------------------------------------------


def insert_webhook(
    conn: Connection, partner_id: str, url: str, secret: str, now: datetime
) -> WebhookRow:
    hook_id = conn.execute(
        insert(Webhook)
        .values(partner_id=partner_id, url=url, secret=secret, created_at=now)
        .returning(Webhook.id)
    ).scalar_one()
    return WebhookRow(int(hook_id), partner_id, url, secret, now)


def count_webhooks(conn: Connection, partner_id: str) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(Webhook).where(Webhook.partner_id == partner_id)
        ).scalar_one()
    )


def list_webhooks(conn: Connection, partner_id: str) -> list[WebhookRow]:
    rows = conn.execute(
        select(*_WEBHOOK_COLUMNS).where(Webhook.partner_id == partner_id).order_by(Webhook.id)
    ).all()
    return [WebhookRow(**r._mapping) for r in rows]


def get_webhook(conn: Connection, webhook_id: int) -> WebhookRow | None:
    row = conn.execute(select(*_WEBHOOK_COLUMNS).where(Webhook.id == webhook_id)).one_or_none()
    return WebhookRow(**row._mapping) if row else None


def delete_webhook(conn: Connection, partner_id: str, webhook_id: int) -> bool:
    found = conn.execute(
        select(Webhook.id).where(Webhook.id == webhook_id, Webhook.partner_id == partner_id)
    ).scalar_one_or_none()
    if found is None:
        return False
    conn.execute(delete(WebhookEvent).where(WebhookEvent.webhook_id == webhook_id))
    conn.execute(delete(Webhook).where(Webhook.id == webhook_id))
    return True


def pending_counts(conn: Connection, partner_id: str) -> dict[int, dict[str, int]]:
    """Per webhook of the partner: its events by status."""
    rows = conn.execute(
        select(WebhookEvent.webhook_id, WebhookEvent.status, func.count())
        .join(Webhook, Webhook.id == WebhookEvent.webhook_id)
        .where(Webhook.partner_id == partner_id)
        .group_by(WebhookEvent.webhook_id, WebhookEvent.status)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for hook, status, n in rows:
        counts.setdefault(int(hook), {})[str(status)] = int(n)
    return counts


def dead_letters(conn: Connection, partner_id: str, limit: int) -> list[EventRow]:
    """The partner's events given up on, newest first."""
    rows = conn.execute(
        select(*_EVENT_COLUMNS)
        .join(Webhook, Webhook.id == WebhookEvent.webhook_id)
        .where(Webhook.partner_id == partner_id, WebhookEvent.status == DEAD)
        .order_by(WebhookEvent.id.desc())
        .limit(limit)
    ).all()
    return [_event(r) for r in rows]


# --- dispatching ------------------------------------------------------------------------


def _due(now: datetime) -> Any:
    return and_(
        WebhookEvent.status == PENDING,
        WebhookEvent.next_attempt_at <= now,
        or_(WebhookEvent.claimed_until.is_(None), WebhookEvent.claimed_until < now),
    )


def claim_due(
    conn: Connection, worker: str, now: datetime, lease: timedelta, limit: int
) -> tuple[WebhookRow, list[EventRow]] | None:
    """Claim up to ``limit`` due events of one webhook (the one with the oldest due
    event), under a lease: a dispatcher that dies leaves them to be taken again."""
    first = select(WebhookEvent.webhook_id).where(_due(now)).order_by(WebhookEvent.id).limit(1)
    if conn.dialect.name == "postgresql":
        first = first.with_for_update(skip_locked=True)
    hook_id = conn.execute(first).scalar_one_or_none()
    if hook_id is None:
        return None
    hook = get_webhook(conn, int(hook_id))
    if hook is None:
        return None
    ids = (
        select(WebhookEvent.id)
        .where(WebhookEvent.webhook_id == hook.id, _due(now))
        .order_by(WebhookEvent.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    taken = [int(i) for i in conn.execute(ids).scalars().all()]
    if not taken:
        return None
    conn.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(taken))
        .values(claimed_by=worker, claimed_until=now + lease)
    )
    rows = conn.execute(
        select(*_EVENT_COLUMNS).where(WebhookEvent.id.in_(taken)).order_by(WebhookEvent.id)
    ).all()
    return hook, [_event(r) for r in rows]


def mark_done(conn: Connection, ids: Iterable[int], worker: str, now: datetime) -> None:
    conn.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(list(ids)), WebhookEvent.status == PENDING)
        .values(
            status=DONE,
            attempts=WebhookEvent.attempts + 1,
            first_attempt_at=func.coalesce(WebhookEvent.first_attempt_at, now),
            finished_at=now,
            claimed_by=None,
            claimed_until=None,
            last_error=None,
        )
    )


def mark_failed(
    conn: Connection,
    event: EventRow,
    now: datetime,
    error: str,
    next_attempt_at: datetime | None,
) -> None:
    """Record a failed attempt: the next one at ``next_attempt_at``, or None: given up
    (dead-lettered)."""
    values: dict[str, Any] = {
        "attempts": event.attempts + 1,
        "first_attempt_at": event.first_attempt_at or now,
        "claimed_by": None,
        "claimed_until": None,
        "last_error": error[:500],
    }
    if next_attempt_at is None:
        values.update(status=DEAD, finished_at=now)
    else:
        values["next_attempt_at"] = next_attempt_at
    conn.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event.id, WebhookEvent.status == PENDING)
        .values(**values)
    )
