"""API tokens: issued once, stored as a hash, recognised by a non-secret prefix.

A token looks like ``pc_<prefix>_<secret>``: 8 hex characters of prefix (shown in lists
and used to revoke) and 256 random bits of secret. Only SHA-256 of the whole token is
stored. A fast hash is right here, unlike for passwords: the secret has 256 bits of
entropy, so there is nothing to brute-force, and authentication stays a microsecond.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from pushcamp.errors import NotFound, Unauthorized
from pushcamp.store import Database
from pushcamp.store import partners as q
from pushcamp.store.partners import TokenInfo

_TOKEN = re.compile(r"pc_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_PREFIX = re.compile(r"[0-9a-f]{8}")
# Compared against when the prefix is unknown, so both paths do the same work.
_DUMMY_HASH = hashlib.sha256(b"pushcamp-no-such-token").digest()


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated partner behind a request, with its rate-limit budgets."""

    partner_id: str
    v1_limit: int
    v2_limit: int


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


def create_token(db: Database, partner_id: str) -> str:
    """Issue a new token for the partner. The token is returned once and never again."""
    for _ in range(5):
        prefix = secrets.token_hex(4)
        token = f"pc_{prefix}_{secrets.token_urlsafe(32)}"
        try:
            with db.write() as conn:
                if q.get_partner(conn, partner_id) is None:
                    raise NotFound(f"no partner {partner_id!r}")
                q.insert_token(conn, partner_id, prefix, _hash(token))
            return token
        except IntegrityError:  # prefix collision (1 in 4 billion): draw again
            continue
    raise RuntimeError("could not draw a unique token prefix")


def revoke_token(db: Database, prefix: str) -> None:
    """Revoke by prefix (``pc_1a2b3c4d`` or ``1a2b3c4d``); the token stops working at once."""
    prefix = prefix.removeprefix("pc_").split("_", 1)[0]
    with db.write() as conn:
        if not q.revoke_token(conn, prefix) and not q.token_exists(conn, prefix):
            raise NotFound(f"no token with prefix {prefix!r}")


def revoke_partner_token(db: Database, partner_id: str, prefix: str) -> None:
    """Revoke one of the partner's own tokens by prefix. Another partner's token, an
    unknown or an already revoked one all raise :class:`NotFound` alike."""
    prefix = prefix.strip().removeprefix("pc_").split("_", 1)[0]
    if not _PREFIX.fullmatch(prefix):
        raise NotFound("no such live token")
    with db.write() as conn:
        if not q.revoke_token(conn, prefix, partner_id=partner_id):
            raise NotFound("no such live token")


def list_tokens(db: Database, partner_id: str) -> list[TokenInfo]:
    """The partner's tokens (prefix, creation and revocation times), newest first."""
    with db.read() as conn:
        return q.list_tokens(conn, partner_id)


def check_token(db: Database, token: str) -> tuple[Caller, int]:
    """The caller behind a bare token and the token's row id (a panel session is tied
    to it); :class:`Unauthorized` when it is malformed, unknown or revoked."""
    caller, _digest, token_id = _check_record(db, token)
    return caller, token_id


def authenticate(db: Database, authorization: str | None) -> Caller:
    """Resolve an ``Authorization`` header: ``Bearer <token>`` (scheme in any case) or the
    bare token, as the published client sends it."""
    return _check(db, _token_from_header(authorization))[0]


def _check(db: Database, token: str | None) -> tuple[Caller, bytes]:
    """The caller behind ``token`` and the token's digest (the key it is cached under)."""
    caller, digest, _token_id = _check_record(db, token)
    return caller, digest


def _check_record(db: Database, token: str | None) -> tuple[Caller, bytes, int]:
    match = _TOKEN.fullmatch(token) if token else None
    if token is None or match is None:
        raise Unauthorized("malformed credentials")
    with db.read() as conn:
        record = q.find_token(conn, match.group(1))
    digest = _hash(token)
    expected = record.secret_hash if record else _DUMMY_HASH
    if not hmac.compare_digest(digest, expected) or record is None or record.revoked:
        raise Unauthorized("unknown or revoked token")
    return Caller(record.partner_id, record.v1_limit, record.v2_limit), digest, record.token_id


def _token_from_header(value: str | None) -> str | None:
    if not value:
        return None
    parts = value.strip().split()
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1]
    return None


class Authenticator:
    """:func:`authenticate` with a short memory of tokens that were valid.

    A hit costs a SHA-256 and a dict lookup instead of a database round trip. A revoked
    token or a changed limit is seen at most ``ttl`` seconds later by a running server
    (2 s by default); unknown and revoked tokens are never cached, so a wrong token
    always costs a lookup and never blocks a right one.
    """

    def __init__(
        self,
        db: Database,
        ttl: float = 2.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._cache: dict[bytes, tuple[float, Caller]] = {}

    def cached(self, authorization: str | None) -> Caller | None:
        """The caller if this token was valid within ``ttl`` seconds, else None."""
        if self._ttl <= 0:
            return None
        token = _token_from_header(authorization)
        if not token or not token.isascii():
            return None
        hit = self._cache.get(_hash(token))
        if hit is None or hit[0] < self._clock():
            return None
        return hit[1]

    def authenticate(self, authorization: str | None) -> Caller:
        caller, digest = _check(self._db, _token_from_header(authorization))
        if self._ttl > 0:
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[digest] = (self._clock() + self._ttl, caller)
        return caller
