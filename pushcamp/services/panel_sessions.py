"""Panel sign-in: a partner's API token opens a server-side session.

The browser keeps a random session id in a cookie; the database keeps only its SHA-256,
the partner, the API token's row (revoking that token ends the session at once), a CSRF
secret for the session's forms, and an expiry. The API token itself is checked once, at
sign-in, and stored nowhere.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pushcamp.services import tokens
from pushcamp.store import Database
from pushcamp.store import panel_sessions as q
from pushcamp.store.models import utcnow

SESSION_LIFETIME = timedelta(hours=12)
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class PanelSession:
    """A signed-in browser: whose panel it sees and the secret its forms must carry."""

    partner_id: str
    csrf_token: str
    expires_at: datetime

    def csrf_ok(self, submitted: str | None) -> bool:
        """Whether a form carried this session's CSRF token (compared in constant time)."""
        if not submitted or not submitted.isascii():
            return False
        return hmac.compare_digest(submitted.encode(), self.csrf_token.encode())


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("ascii")).digest()


def open_session(db: Database, token: str) -> tuple[str, PanelSession]:
    """Check the API token and open a session for its partner: the session id (for the
    cookie, returned once) and the session. :class:`Unauthorized` for a bad token."""
    caller, token_id = tokens.check_token(db, token.strip())
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + SESSION_LIFETIME
    with db.write() as conn:
        q.delete_expired(conn, now)
        q.insert_session(conn, _hash(session_id), caller.partner_id, token_id, csrf, now, expires)
    return session_id, PanelSession(caller.partner_id, csrf, expires)


def find_session(db: Database, session_id: str | None) -> PanelSession | None:
    """The live session behind a cookie value, or None (unknown, expired, logged out, or
    its token revoked)."""
    if not session_id or not _SESSION_ID.fullmatch(session_id):
        return None
    with db.read() as conn:
        row = q.find_session(conn, _hash(session_id), utcnow())
    if row is None:
        return None
    return PanelSession(row.partner_id, row.csrf_secret, row.expires_at)


def close_session(db: Database, session_id: str | None) -> None:
    """Log out: the session's row is deleted, so its cookie opens nothing any more."""
    if not session_id or not _SESSION_ID.fullmatch(session_id):
        return
    with db.write() as conn:
        q.delete_session(conn, _hash(session_id))
