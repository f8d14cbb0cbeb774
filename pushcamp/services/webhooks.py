"""Webhooks: register, list and remove a partner's URLs, read its dead letters
(docs/webhooks.md). The CLI and the panel call these; the dispatcher
(pushcamp/delivery/webhooks.py) sends what the places where events happen emitted."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pushcamp.domain.webhooks import MAX_WEBHOOKS, url_problem
from pushcamp.errors import InvalidRequest, NotFound
from pushcamp.store import Database
from pushcamp.store import partners as partners_q
from pushcamp.store import webhooks as q
from pushcamp.store.models import utcnow


@dataclass(frozen=True, slots=True)
class WebhookView:
    id: int
    url: str
    created_at: datetime
    pending: int
    done: int
    dead: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    webhook_id: int
    event_id: str
    type: str
    created_at: datetime
    attempts: int
    last_error: str | None
    data: dict[str, Any]


def add_webhook(
    db: Database, partner_id: str, url: str, allowed_hosts: frozenset[str] = frozenset()
) -> tuple[int, str]:
    """Register ``url``; returns its id and its signing secret (shown once to the
    partner, who verifies signatures with it). A URL pushcamp must not post to (http,
    a private or loopback address not listed by the operator) is refused (400)."""
    url = url.strip()
    problem = url_problem(url, allowed_hosts)
    if problem is not None:
        raise InvalidRequest.of("url", problem)
    secret = f"whsec_{secrets.token_hex(32)}"
    with db.write() as conn:
        if partners_q.get_partner(conn, partner_id) is None:
            raise NotFound(f"no partner {partner_id!r}")
        if q.count_webhooks(conn, partner_id) >= MAX_WEBHOOKS:
            raise InvalidRequest.of("url", f"a partner has at most {MAX_WEBHOOKS} webhooks")
        row = q.insert_webhook(conn, partner_id, url, secret, utcnow())
    return row.id, secret


def list_webhooks(db: Database, partner_id: str) -> list[WebhookView]:
    with db.read() as conn:
        hooks = q.list_webhooks(conn, partner_id)
        counts = q.pending_counts(conn, partner_id)
    return [
        WebhookView(
            id=h.id,
            url=h.url,
            created_at=h.created_at,
            pending=counts.get(h.id, {}).get(q.PENDING, 0),
            done=counts.get(h.id, {}).get(q.DONE, 0),
            dead=counts.get(h.id, {}).get(q.DEAD, 0),
        )
        for h in hooks
    ]


def remove_webhook(db: Database, partner_id: str, webhook_id: int) -> None:
    """Remove the partner's webhook and its undelivered events (404 when not its own)."""
    with db.write() as conn:
        if not q.delete_webhook(conn, partner_id, webhook_id):
            raise NotFound(f"no webhook {webhook_id} of partner {partner_id!r}")


def dead_letters(db: Database, partner_id: str, limit: int = 100) -> list[DeadLetter]:
    """The partner's events given up on after the retry window, newest first."""
    with db.read() as conn:
        rows = q.dead_letters(conn, partner_id, max(1, min(limit, 1000)))
    return [
        DeadLetter(
            webhook_id=r.webhook_id,
            event_id=r.event_id,
            type=r.type,
            created_at=r.created_at,
            attempts=r.attempts,
            last_error=r.last_error,
            data=r.data,
        )
        for r in rows
    ]
