"""Subscriber use cases of the public endpoints (contract §3): subscribe, replace
(``pushsubscriptionchange``), unsubscribe, site visit."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from pushcamp.domain.subscribers import NewSubscription, canonical_endpoint
from pushcamp.encoding import b64url_decode, b64url_encode
from pushcamp.errors import InvalidRequest
from pushcamp.store import Database
from pushcamp.store import subscribers as q
from pushcamp.store import webhooks as webhooks_q

UNSUBSCRIBED = "unsubscribed"
REPLACED = "replaced"


def _storable(sub: NewSubscription) -> NewSubscription:
    """Keys in their one canonical spelling. The validator's base64url decoder is lenient
    (padding, the standard alphabet, stray characters): the same key must not be stored
    as two different strings, nor as one longer than its column."""
    return dataclasses.replace(
        sub,
        p256dh=b64url_encode(b64url_decode(sub.p256dh)),
        auth=b64url_encode(b64url_decode(sub.auth)),
        os=sub.os[:64] if sub.os else sub.os,
    )


def subscribe(
    db: Database,
    partner_id: str,
    sub: NewSubscription,
    now: datetime,
    old_endpoint: str | None = None,
) -> bool:
    """Store the subscription (an update when the partner already has this endpoint) and
    return whether it is new. Subscribing is a visit: it refreshes engagement.

    With ``old_endpoint`` (the browser's ``pushsubscriptionchange``), the old row becomes
    inactive ("replaced") and the new one inherits its language, time zone, attributes
    and engagement where the new subscription sends none -- in the same transaction, so
    the subscriber is never counted twice nor lost.
    """
    sub = _storable(sub)
    if old_endpoint is not None:
        old_endpoint = canonical_endpoint(old_endpoint)
    engaged: datetime | None = now
    try:
        with db.write() as conn:
            existed = q.get_subscriber_id(conn, partner_id, sub.endpoint) is not None
            if old_endpoint is not None and old_endpoint != sub.endpoint:
                old = q.get_carry_over(conn, partner_id, old_endpoint)
                if old is not None:
                    sub = dataclasses.replace(
                        sub,
                        language=sub.language or old.language,
                        timezone=sub.timezone or old.timezone,
                        attributes=sub.attributes
                        if sub.attributes is not None
                        else dict(old.attributes or {}),
                        last_engaged_at=old.last_engaged_at,
                    )
                    # The browser replaced the subscription by itself: no one visited.
                    engaged = None
                    q.deactivate(conn, partner_id, old_endpoint, REPLACED, now)
            q.upsert_subscriptions(conn, partner_id, [sub], now, engaged_at=engaged)
    except IntegrityError as exc:  # the partner vanished between the lookup and the write
        raise InvalidRequest.of("partner_id", "unknown partner") from exc
    return not existed


def unsubscribe(db: Database, partner_id: str, endpoint: str, now: datetime) -> bool:
    """Deactivate the partner's subscription (kept, never sent to again until the browser
    subscribes anew); False when there was no active one. ``endpoint`` in any spelling
    of it (see :func:`canonical_endpoint`)."""
    with db.write() as conn:
        done = q.deactivate(conn, partner_id, canonical_endpoint(endpoint), UNSUBSCRIBED, now)
        if done:  # pushed to the partner's webhooks (docs/webhooks.md)
            webhooks_q.emit_unsubscribed(conn, partner_id, canonical_endpoint(endpoint))
        return done


def visit(db: Database, partner_id: str, endpoint: str, now: datetime) -> bool:
    """A site visit by this subscriber: refresh its engagement; False if unknown."""
    with db.write() as conn:
        return q.touch_engagement(conn, partner_id, now, endpoint=canonical_endpoint(endpoint))
