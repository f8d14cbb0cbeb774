"""Partners: creation (with their VAPID key pair), limits, key import."""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError

from pushcamp.domain.partners import check_limit, check_partner_id
from pushcamp.errors import Conflict, NotFound
from pushcamp.services import keys
from pushcamp.store import Database
from pushcamp.store import partners as q
from pushcamp.store.partners import PartnerRow


def create_partner(
    db: Database,
    partner_id: str,
    name: str = "",
    v1_limit: int | None = None,
    v2_limit: int | None = None,
) -> PartnerRow:
    """Create a partner and generate its VAPID key pair, in one transaction."""
    check_partner_id(partner_id)
    v1 = check_limit("v1_limit", v1_limit or db.settings.default_v1_limit)
    v2 = check_limit("v2_limit", v2_limit or db.settings.default_v2_limit)
    pair = keys.generate()
    try:
        with db.write() as conn:
            q.insert_partner(conn, partner_id, name, v1, v2, secrets.token_bytes(32))
            q.upsert_vapid_key(conn, partner_id, pair.public_key, pair.private_key)
    except IntegrityError as exc:
        raise Conflict(f"partner {partner_id!r} already exists") from exc
    return get_partner(db, partner_id)


def get_partner(db: Database, partner_id: str) -> PartnerRow:
    with db.read() as conn:
        row = q.get_partner(conn, partner_id)
    if row is None:
        raise NotFound(f"no partner {partner_id!r}")
    return row


def list_partners(db: Database) -> list[PartnerRow]:
    with db.read() as conn:
        return q.list_partners(conn)


def set_limits(
    db: Database, partner_id: str, v1_limit: int | None = None, v2_limit: int | None = None
) -> PartnerRow:
    if v1_limit is not None:
        check_limit("v1_limit", v1_limit)
    if v2_limit is not None:
        check_limit("v2_limit", v2_limit)
    with db.write() as conn:
        found = q.update_limits(conn, partner_id, v1_limit, v2_limit)
    if not found:
        raise NotFound(f"no partner {partner_id!r}")
    return get_partner(db, partner_id)


def import_vapid(db: Database, partner_id: str, public_key: str, private_key: str) -> str:
    """Replace the partner's VAPID pair with an existing one; returns the public key."""
    pair = keys.import_pair(public_key, private_key)
    with db.write() as conn:
        if q.get_partner(conn, partner_id) is None:
            raise NotFound(f"no partner {partner_id!r}")
        q.upsert_vapid_key(conn, partner_id, pair.public_key, pair.private_key)
    return pair.public_key


def vapid_public_key(db: Database, partner_id: str) -> str:
    with db.read() as conn:
        key = q.get_vapid_public_key(conn, partner_id)
    if key is None:
        raise NotFound(f"no partner {partner_id!r}")
    return key
