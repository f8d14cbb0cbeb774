"""Launch use cases (contract §2.2, §2.3, §2.5): record a launch durably, follow it, stop
or resume it. Sending is the delivery engine's job; this only writes the outbox."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from pushcamp.domain.campaigns import CampaignStatus
from pushcamp.domain.launch_codec import request_to_dict
from pushcamp.domain.launches import (
    LIVE,
    DropReason,
    LaunchStatus,
    check_payload,
    fingerprint,
    parse_launch,
    topic_for,
)
from pushcamp.errors import CampaignNotFound, InvalidRequest, NotFound
from pushcamp.store import Database
from pushcamp.store import campaigns as campaigns_q
from pushcamp.store import launches as q
from pushcamp.store import outbox as outbox_q
from pushcamp.store import partners as partners_q
from pushcamp.store import pause as pause_q
from pushcamp.store import statistics as stats_q
from pushcamp.store.models import utcnow
from pushcamp.timeutil import iso

# An Idempotency-Key is honoured for this long after its first use (documented: at
# least 24 h).
IDEMPOTENCY_WINDOW = timedelta(hours=48)
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def check_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _KEY.fullmatch(value):
        raise InvalidRequest.of("Idempotency-Key", "must be 1-255 visible ASCII characters")
    return value


def launch_campaign(
    db: Database,
    partner_id: str,
    campaign_id: int,
    data: Mapping[str, Any],
    *,
    events_url: str,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Validate a launch and record it with its batch plan in one transaction; returns
    the response body. Nothing is sent here: the delivery engine picks the plan up.

    With ``send_at`` the launch is recorded ``Scheduled``, without a plan: the scheduler
    beside the runners (delivery/schedule.py) writes the plan when it is due, and the
    campaign keeps its status until then. An ``is_all`` campaign's scheduled launch is
    its one launch."""
    key = check_idempotency_key(idempotency_key)
    now = utcnow()
    digest = fingerprint(data)
    response = {"success": True, "campaign_id": campaign_id}
    try:
        with db.write() as conn:
            if key is not None:
                found = q.find_idempotency(conn, partner_id, key, now - IDEMPOTENCY_WINDOW)
                if found is not None:
                    return _replay(found, campaign_id, digest)
            # Locked until commit: a concurrent delete waits, then stops this launch.
            campaign = campaigns_q.get_campaign(conn, partner_id, campaign_id, for_update=True)
            if campaign is None or campaign.deleted_at is not None:
                raise CampaignNotFound()
            if key is not None:
                # A concurrent request with this key may have held the lock and committed
                # while this one waited (PostgreSQL): answer as it did, launching nothing.
                found = q.find_idempotency(conn, partner_id, key, now - IDEMPOTENCY_WINDOW)
                if found is not None:
                    return _replay(found, campaign_id, digest)
            request = parse_launch(data, is_all=campaign.is_all, now=now)
            site = partners_q.get_site_settings(conn, partner_id)
            check_payload(request, site.default_icon if site else None, events_url)
            scheduled = request.send_at is not None
            # An is_all campaign's second launch breaks uq_launches_once (IntegrityError).
            launch_id = q.insert_launch(
                conn,
                partner_id=partner_id,
                campaign_id=campaign_id,
                once=campaign.is_all,
                status=LaunchStatus.SCHEDULED if scheduled else LaunchStatus.QUEUED,
                request=request_to_dict(request),
                now=now,
                # Fixed now: whichever process sends a batch, the service worker reports
                # to the same public URL.
                events_url=events_url,
                not_before=request.send_at,
                max_per_minute=request.max_per_minute,
            )
            if scheduled:
                q.set_plan(conn, launch_id, topic_for(launch_id), 0)
                if key is not None:
                    q.save_idempotency(
                        conn, partner_id, key, digest, response, now, now - IDEMPOTENCY_WINDOW
                    )
                return response
            batches = q.plan_for(conn, launch_id, partner_id, request, now)
            q.set_plan(conn, launch_id, topic_for(launch_id), batches)
            if batches == 0:  # nobody to send to: done at once
                q.set_status(
                    conn, launch_id, LaunchStatus.SENT, now=now, finished=True, started=True
                )
            status = CampaignStatus.SENT if batches == 0 else CampaignStatus.SENDING
            campaigns_q.set_status(conn, campaign_id, status, now)
            if key is not None:
                q.save_idempotency(
                    conn, partner_id, key, digest, response, now, now - IDEMPOTENCY_WINDOW
                )
    except IntegrityError as exc:
        # Two requests raced: either for an is_all campaign's only launch, or with the
        # same Idempotency-Key (on this campaign or another). The database let exactly
        # one win; this one launched nothing.
        if key is not None:
            with db.read() as conn:
                found = q.find_idempotency(conn, partner_id, key, now - IDEMPOTENCY_WINDOW)
            if found is not None:
                return _replay(found, campaign_id, digest)
        raise _already_launched() from exc
    return response


def _replay(found: tuple[str, dict[str, Any]], campaign_id: int, digest: str) -> dict[str, Any]:
    """The first answer to this key, if this request is the one it was given to: the
    same campaign (the stored answer names it) and the same body. A key belongs to one
    launch request; reused for another campaign it is refused, never replayed (the
    other campaign's answer would say "launched" while nothing was)."""
    stored_digest, response = found
    if response.get("campaign_id") != campaign_id:
        raise InvalidRequest.of(
            "Idempotency-Key",
            f"was already used to launch campaign {response.get('campaign_id')}",
        )
    if stored_digest != digest:
        raise InvalidRequest.of("Idempotency-Key", "was already used with a different request body")
    return response


def _already_launched() -> InvalidRequest:
    return InvalidRequest.of("campaign_id", "an is_all campaign can be launched only once")


def launch_summaries(db: Database, partner_id: str, campaign_id: int) -> list[dict[str, Any]]:
    """§2.5's ``launches``: each launch with live counters."""
    with db.read() as conn:
        launches = q.launches_of_campaign(conn, partner_id, campaign_id)
        counts = stats_q.launch_counts(conn, [launch.id for launch in launches])
    return [_summary(launch, counts.get(launch.id, {})) for launch in launches]


def _summary(launch: q.LaunchRow, counts: Mapping[str, int]) -> dict[str, Any]:
    sent = counts.get("sent", 0)
    dropped = counts.get("dropped", 0)
    body: dict[str, Any] = {
        "launch_id": launch.id,
        "status": launch.status,
        "targeted": sent + dropped,
        "sent": sent,
        "dropped": dropped,
        "delivered": counts.get("event:delivered", 0),
        "clicks": counts.get("event:clicked", 0),
        "started_at": iso(launch.started_at) if launch.started_at else None,
        "finished_at": iso(launch.finished_at) if launch.finished_at else None,
        "batches_total": launch.batches_total,
        "batches_done": launch.batches_done,
    }
    if launch.paused_reason:
        body["paused_reason"] = launch.paused_reason
    if launch.not_before is not None:
        body["send_at"] = iso(launch.not_before)
    if launch.max_per_minute is not None:
        body["max_per_minute"] = launch.max_per_minute
    return body


def stop_launches(conn: Any, partner_id: str, campaign_id: int) -> int:
    """Stop the campaign's running launches (inside the delete transaction)."""
    return q.stop_campaign_launches(conn, partner_id, campaign_id, LIVE, utcnow())


def cancel_launch(db: Database, launch_id: int) -> None:
    """Cancel a scheduled launch before it starts (``pushcamp launches cancel``): it is
    ``Stopped`` and never sends. NotFound for an unknown launch; InvalidRequest for one
    that is not ``Scheduled`` (it has started: deleting its campaign stops it). The
    campaign keeps its status (scheduling never changed it); a cancelled launch still
    counts as an ``is_all`` campaign's one launch."""
    with db.write() as conn:
        launch = q.get_launch(conn, launch_id)
        if launch is None:
            raise NotFound(f"no launch {launch_id}")
        scheduled = (LaunchStatus.SCHEDULED,)
        if not q.set_status(
            conn, launch_id, LaunchStatus.STOPPED, only_from=scheduled, now=utcnow(), finished=True
        ):
            raise InvalidRequest.of(
                "launch_id",
                f"is {launch.status}, not Scheduled: only a launch that has not "
                "started can be cancelled (delete its campaign to stop it)",
            )


def resume_launch(db: Database, launch_id: int, *, wait_seconds: float = 120.0) -> int:
    """Let a paused launch go on (after its cause, e.g. the VAPID key, was fixed).

    In one transaction: the launch is ``Sending`` again, the provisional records of the
    refusals that paused it (``senderRefused``) are removed and the batches holding them
    are pending again, so those subscribers are tried again and everyone else with a
    record is skipped. Waits first (up to ``wait_seconds``) while a worker still holds
    one of the launch's batches, recording the answers to messages it posted before the
    pause. Returns how many subscribers will be tried again."""
    deadline = time.monotonic() + wait_seconds
    while True:
        with db.write() as conn:
            launch = q.get_launch(conn, launch_id)
            if launch is None:
                raise NotFound(f"no launch {launch_id}")
            if launch.status != LaunchStatus.PAUSED:
                raise InvalidRequest.of("launch_id", f"is {launch.status}, not Paused")
            if q.live_claims(conn, launch_id, utcnow()) == 0:
                retried = q.reopen_sender_refused(conn, launch_id, DropReason.SENDER_REFUSED)
                # The pause rule counts afresh; tasks dropped while it was paused are
                # published again (Celery runner).
                pause_q.reset_tally(conn, launch_id)
                outbox_q.unpublish_launch(conn, launch_id)
                q.set_status(
                    conn, launch_id, LaunchStatus.SENDING, only_from=(LaunchStatus.PAUSED,)
                )
                return retried
        if time.monotonic() > deadline:
            raise InvalidRequest.of(
                "launch_id", "is still recording answers to messages posted before the pause"
            )
        time.sleep(0.2)


def launch_progress(db: Database, launch_id: int) -> dict[str, Any]:
    with db.read() as conn:
        launch = q.get_launch(conn, launch_id)
        if launch is None:
            raise NotFound(f"no launch {launch_id}")
        counts = stats_q.launch_counts(conn, [launch_id]).get(launch_id, {})
    return _summary(launch, counts)


def latest_launch_id(db: Database, campaign_id: int) -> int:
    """The newest launch of a campaign, whoever its partner (CLI use)."""
    with db.read() as conn:
        found = q.latest_launch_id(conn, campaign_id)
    if found is None:
        raise NotFound(f"campaign {campaign_id} has no launch")
    return found
