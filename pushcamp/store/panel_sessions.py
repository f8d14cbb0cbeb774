"""Queries on panel sessions. A session is found by the hash of its id, and only while
it has not expired and the API token it was opened with is not revoked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from pushcamp.store.models import ApiToken, PanelSession


@dataclass(frozen=True, slots=True)
class SessionRow:
    partner_id: str
    token_id: int
    csrf_secret: str
    expires_at: datetime


def insert_session(
    conn: Connection,
    id_hash: bytes,
    partner_id: str,
    token_id: int,
    csrf_secret: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    conn.execute(
        insert(PanelSession).values(
            id_hash=id_hash,
            partner_id=partner_id,
            token_id=token_id,
            csrf_secret=csrf_secret,
            created_at=now,
            expires_at=expires_at,
        )
    )


def find_session(conn: Connection, id_hash: bytes, now: datetime) -> SessionRow | None:
    row = conn.execute(
        select(
            PanelSession.partner_id,
            PanelSession.token_id,
            PanelSession.csrf_secret,
            PanelSession.expires_at,
        )
        .join(ApiToken, ApiToken.id == PanelSession.token_id)
        .where(
            PanelSession.id_hash == id_hash,
            PanelSession.expires_at > now,
            ApiToken.revoked_at.is_(None),
            ApiToken.partner_id == PanelSession.partner_id,
        )
    ).one_or_none()
    return SessionRow(*row) if row else None


def delete_session(conn: Connection, id_hash: bytes) -> bool:
    return conn.execute(delete(PanelSession).where(PanelSession.id_hash == id_hash)).rowcount == 1


def delete_expired(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(PanelSession).where(PanelSession.expires_at <= now)).rowcount
