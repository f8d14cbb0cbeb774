"""Queries on partners, their VAPID keys and their API tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from pushcamp.store.models import ApiToken, Partner, VapidKey, utcnow


@dataclass(frozen=True, slots=True)
class PartnerRow:
    id: str
    name: str
    v1_limit: int
    v2_limit: int
    default_icon: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What authentication needs to know about a token, in one row."""

    secret_hash: bytes
    revoked: bool
    partner_id: str
    v1_limit: int
    v2_limit: int
    token_id: int


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as a list shows it: never its secret, nor its hash."""

    prefix: str
    created_at: datetime
    revoked_at: datetime | None


_PARTNER_COLUMNS = (
    Partner.id,
    Partner.name,
    Partner.v1_limit,
    Partner.v2_limit,
    Partner.default_icon,
    Partner.created_at,
)


def insert_partner(
    conn: Connection, partner_id: str, name: str, v1: int, v2: int, signing_key: bytes
) -> None:
    conn.execute(
        insert(Partner).values(
            id=partner_id, name=name, v1_limit=v1, v2_limit=v2, signing_key=signing_key
        )
    )


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """What the public (browser-facing) endpoints need to know about a partner."""

    partner_id: str
    site_origins: tuple[str, ...]
    signing_key: bytes
    vapid_public_key: str
    engagement_days: int
    default_icon: str | None


def _with_vapid_key(conn: Connection, partner_id: str, *columns: Any) -> Sequence[Any] | None:
    """``columns`` of the partner joined with its VAPID key pair, or None."""
    return conn.execute(
        select(*columns)
        .join(VapidKey, VapidKey.partner_id == Partner.id)
        .where(Partner.id == partner_id)
    ).one_or_none()


def get_site_settings(conn: Connection, partner_id: str) -> SiteSettings | None:
    row = _with_vapid_key(
        conn,
        partner_id,
        Partner.id,
        Partner.site_origins,
        Partner.signing_key,
        VapidKey.public_key,
        Partner.engagement_days,
        Partner.default_icon,
    )
    if row is None:
        return None
    return SiteSettings(
        partner_id=row[0],
        site_origins=tuple(row[1] or ()),
        signing_key=bytes(row[2]),
        vapid_public_key=row[3],
        engagement_days=row[4],
        default_icon=row[5],
    )


@dataclass(frozen=True, slots=True)
class SenderContext:
    """What the delivery engine needs to know about a partner. The private key is read
    here and nowhere else."""

    partner_id: str
    vapid_private_key: str
    signing_key: bytes
    default_icon: str | None
    engagement_days: int
    frequency_cap: int | None
    silent_start: int | None
    silent_end: int | None
    # Local-time launches and silent hours (docs/delivery.md): the zone of subscribers
    # whose own is unknown (None: UTC), and whether silent hours drop or defer.
    default_timezone: str | None = None
    silent_hours_mode: str = "drop"


def get_sender_context(conn: Connection, partner_id: str) -> SenderContext | None:
    row = _with_vapid_key(
        conn,
        partner_id,
        Partner.id,
        VapidKey.private_key,
        Partner.signing_key,
        Partner.default_icon,
        Partner.engagement_days,
        Partner.frequency_cap,
        Partner.silent_start,
        Partner.silent_end,
        Partner.default_timezone,
        Partner.silent_hours_mode,
    )
    if row is None:
        return None
    return SenderContext(
        partner_id=row[0],
        vapid_private_key=row[1],
        signing_key=bytes(row[2]),
        default_icon=row[3],
        engagement_days=row[4],
        frequency_cap=row[5],
        silent_start=row[6],
        silent_end=row[7],
        default_timezone=row[8],
        silent_hours_mode=row[9] or "drop",
    )


def set_site_origins(conn: Connection, partner_id: str, origins: list[str]) -> bool:
    result = conn.execute(
        update(Partner).where(Partner.id == partner_id).values(site_origins=origins)
    )
    return result.rowcount == 1


def get_partner(conn: Connection, partner_id: str) -> PartnerRow | None:
    row = conn.execute(select(*_PARTNER_COLUMNS).where(Partner.id == partner_id)).one_or_none()
    return PartnerRow(*row) if row else None


def list_partners(conn: Connection) -> list[PartnerRow]:
    rows = conn.execute(select(*_PARTNER_COLUMNS).order_by(Partner.id)).all()
    return [PartnerRow(*r) for r in rows]


def update_limits(conn: Connection, partner_id: str, v1: int | None, v2: int | None) -> bool:
    values: dict[str, int] = {}
    if v1 is not None:
        values["v1_limit"] = v1
    if v2 is not None:
        values["v2_limit"] = v2
    if not values:
        return get_partner(conn, partner_id) is not None
    result = conn.execute(update(Partner).where(Partner.id == partner_id).values(**values))
    return result.rowcount == 1


def upsert_vapid_key(conn: Connection, partner_id: str, public_key: str, private_key: str) -> None:
    updated = conn.execute(
        update(VapidKey)
        .where(VapidKey.partner_id == partner_id)
        .values(public_key=public_key, private_key=private_key, created_at=utcnow())
    )
    if updated.rowcount == 0:
        conn.execute(
            insert(VapidKey).values(
                partner_id=partner_id, public_key=public_key, private_key=private_key
            )
        )


def get_vapid_public_key(conn: Connection, partner_id: str) -> str | None:
    return conn.execute(
        select(VapidKey.public_key).where(VapidKey.partner_id == partner_id)
    ).scalar_one_or_none()


def insert_token(conn: Connection, partner_id: str, prefix: str, secret_hash: bytes) -> None:
    conn.execute(
        insert(ApiToken).values(partner_id=partner_id, prefix=prefix, secret_hash=secret_hash)
    )


def find_token(conn: Connection, prefix: str) -> TokenRecord | None:
    row = conn.execute(
        select(
            ApiToken.secret_hash,
            ApiToken.revoked_at,
            Partner.id,
            Partner.v1_limit,
            Partner.v2_limit,
            ApiToken.id,
        )
        .join(Partner, Partner.id == ApiToken.partner_id)
        .where(ApiToken.prefix == prefix)
    ).one_or_none()
    if row is None:
        return None
    return TokenRecord(
        secret_hash=bytes(row[0]),
        revoked=row[1] is not None,
        partner_id=row[2],
        v1_limit=row[3],
        v2_limit=row[4],
        token_id=int(row[5]),
    )


def revoke_token(conn: Connection, prefix: str, partner_id: str | None = None) -> bool:
    """Revoke a live token; with ``partner_id``, only if it is that partner's."""
    stmt = update(ApiToken).where(ApiToken.prefix == prefix, ApiToken.revoked_at.is_(None))
    if partner_id is not None:
        stmt = stmt.where(ApiToken.partner_id == partner_id)
    result = conn.execute(stmt.values(revoked_at=utcnow()))
    return result.rowcount == 1


def list_tokens(conn: Connection, partner_id: str) -> list[TokenInfo]:
    """The partner's tokens, newest first, revoked ones included."""
    rows = conn.execute(
        select(ApiToken.prefix, ApiToken.created_at, ApiToken.revoked_at)
        .where(ApiToken.partner_id == partner_id)
        .order_by(ApiToken.id.desc())
    ).all()
    return [TokenInfo(*r) for r in rows]


def token_exists(conn: Connection, prefix: str) -> bool:
    return (
        conn.execute(select(ApiToken.id).where(ApiToken.prefix == prefix)).scalar_one_or_none()
        is not None
    )
