"""The scheduler: starts scheduled launches when their time comes. It lives beside the
delivery runners, not in the API: the in-process runner's workers call it before each
claim, and the Celery runner's outbox publisher before each round, so a due launch is
started within one poll (``poll_seconds``, 1 s by default) by whichever process looks
first. It is only rows: a launch scheduled before a restart is started after it.

Starting a launch writes its batch plan then (not when it was scheduled), so everyone
subscribed by its time is in its audience, and makes it ``Queued`` (``Sent`` at once if
there is nobody to send to) and its campaign ``Sending`` (or ``Sent``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from pushcamp.domain.campaigns import CampaignStatus
from pushcamp.domain.launch_codec import request_from_dict
from pushcamp.domain.launches import LaunchStatus
from pushcamp.logs import get_logger
from pushcamp.store import campaigns as campaigns_q
from pushcamp.store import launches as q

log = get_logger("pushcamp.delivery")


def start_due_launches(conn: Connection, now: datetime) -> list[int]:
    """Start the scheduled launches due at ``now`` (in the caller's write transaction);
    their ids. On PostgreSQL a launch another process is starting is skipped."""
    started: list[int] = []
    for launch_id, partner_id, campaign_id in q.due_launches(conn, LaunchStatus.SCHEDULED, now):
        launch = q.get_launch(conn, launch_id)
        assert launch is not None
        # A local-time launch is planned by its subscribers' zones from now on.
        request = request_from_dict(launch.request)
        batches = q.plan_for(conn, launch_id, partner_id, request, now)
        q.set_batches_total(conn, launch_id, batches)
        if batches == 0:  # nobody to send to: done at once
            q.set_status(
                conn,
                launch_id,
                LaunchStatus.SENT,
                only_from=(LaunchStatus.SCHEDULED,),
                now=now,
                finished=True,
                started=True,
            )
        else:
            q.set_status(conn, launch_id, LaunchStatus.QUEUED, only_from=(LaunchStatus.SCHEDULED,))
        status = CampaignStatus.SENT if batches == 0 else CampaignStatus.SENDING
        campaigns_q.set_status(conn, campaign_id, status, now)
        started.append(launch_id)
    if started:
        log.info("scheduled_launches_started", launch_ids=started)
    return started
