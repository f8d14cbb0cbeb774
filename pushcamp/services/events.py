"""Events reported by service workers: ``delivered``, ``clicked``, ``closed`` (contract
§3). Only a token signed with the partner's key, naming one of that partner's launches,
counts, and each (launch, subscriber, type) counts at most once, so statistics can be
neither forged nor inflated."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError

from pushcamp.domain.event_tokens import EventClaim, verify
from pushcamp.errors import InvalidRequest
from pushcamp.store import Database
from pushcamp.store import events as q
from pushcamp.store import statistics as stats_queries
from pushcamp.store import subscribers as subscriber_queries
from pushcamp.store import webhooks as webhooks_q

EVENT_TYPES = ("delivered", "clicked", "closed")


def record_event(
    db: Database,
    signing_key: bytes,
    event_type: str,
    token: str,
    now: datetime,
    action: int | None = None,
) -> EventClaim:
    """Verify ``token`` with the partner's key and store the event, if the launch it
    names is that partner's; a click also counts as engagement. A replay, or a token
    naming another partner's launch, is refused (400) and stored nowhere.

    ``action``: for a click on an action button, its index, which the launch's
    notification must have (a launch with one button has no button 1)."""
    if event_type not in EVENT_TYPES:
        raise InvalidRequest.of("type", f"must be one of {', '.join(EVENT_TYPES)} or visit")
    if action is not None and event_type != "clicked":
        raise InvalidRequest.of("action", "only a clicked event has an action")
    claim = verify(signing_key, token, int(now.timestamp()))
    try:
        with db.write() as conn:
            if action is not None:
                count = q.action_count(conn, claim.partner_id, claim.launch_id)
                if count is not None and not 0 <= action < count:
                    raise InvalidRequest.of(
                        "action",
                        f"the notification has no action {action}"
                        + (f" (it has {count})" if count else " (it has no buttons)"),
                    )
            recorded = q.insert_event(
                conn,
                claim.partner_id,
                claim.launch_id,
                claim.subscriber_id,
                event_type,
                now,
                action,
            )
            if not recorded:
                # Signed with the partner's key but naming a launch that is not the
                # partner's (or none): refused like a forged token, nothing written.
                raise InvalidRequest.of("token", "names no launch of its partner")
            if event_type in ("delivered", "clicked"):
                stats_queries.count_event(
                    conn, claim.partner_id, claim.launch_id, claim.subscriber_id, event_type, now
                )
            if event_type in ("delivered", "clicked"):  # pushed to the partner's webhooks
                webhooks_q.emit_subscriber_event(
                    conn,
                    claim.partner_id,
                    f"notification.{event_type}",
                    [claim.subscriber_id],
                    launch_id=claim.launch_id,
                    **({} if action is None else {"action": action}),
                )
            if event_type == "clicked":
                subscriber_queries.touch_engagement(
                    conn, claim.partner_id, now, subscriber_id=claim.subscriber_id
                )
    except IntegrityError as exc:
        raise InvalidRequest.of("token", f"this {event_type} event was already recorded") from exc
    return claim
