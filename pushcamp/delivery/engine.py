"""The fan-out engine: claims a launch's batches, reads each batch's audience in keyset
pages, sends, and records what the push service answered.

The rule that makes crashes harmless: a subscriber's delivery record is written only
after its outcome is known, and a batch is marked done only after all its records are
committed. A batch claimed by a worker that died (its lease ran out, or — embedded mode —
the server restarted) is claimed again, and everyone who already has a record is skipped.
So nobody is skipped and only the messages in flight at the crash are sent twice; they
carry the launch's ``Topic``, so a push service replaces the first copy if it is still
waiting.

The in-process runner lives in the API server's event loop (embedded default). Database
work runs in threads so the loop keeps serving HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from pushcamp.delivery.metrics import PUSHES
from pushcamp.domain import event_tokens
from pushcamp.domain.campaigns import CampaignStatus
from pushcamp.domain.launch_codec import request_from_dict
from pushcamp.domain.launches import (
    DeliveryState,
    DropReason,
    LaunchStatus,
    audience_language,
    build_payload,
    counts_towards_pause,
    frequency_capped,
    in_silent_hours,
    local_minutes,
    should_pause,
)
from pushcamp.domain.subscribers import endpoint_problem
from pushcamp.store import Database
from pushcamp.store import campaigns as campaigns_q
from pushcamp.store import launches as q
from pushcamp.store import partners as partners_q
from pushcamp.store import subscribers as subs_q
from pushcamp.store.models import utcnow
from pushcamp.store.partners import SenderContext
from pushcamp.webpush import (
    AuthRejected,
    Gone,
    InvalidSubscription,
    PushOptions,
    PushResult,
    Sent,
    Subscription,
    TooLarge,
    Vapid,
    WebPushSender,
)

log = logging.getLogger("pushcamp.delivery")
T = TypeVar("T")

RUNNABLE = (LaunchStatus.QUEUED, LaunchStatus.SENDING)
# How soon a page in progress notices its launch was stopped (a delete) or paused.
STOP_CHECK_SECONDS = 0.25


@dataclass(slots=True)
class EngineOptions:
    workers: int = 4  # batches in progress at once in this process
    page_size: int = 500  # subscribers read per keyset page
    record_every: int = 100  # outcomes buffered before their records are committed
    lease_seconds: float = 30.0  # a claimed batch is taken again after this without news
    poll_seconds: float = 1.0  # how often idle workers look for work they were not told of
    per_host: int = 200  # requests in flight per push service
    timeout: float = 10.0
    max_attempts: int = 4
    max_retry_after: float = 60.0
    # When a launch pauses, the messages already posted are given this long to be
    # answered and recorded (so a resume does not send them again) before the rest are
    # abandoned. A stop (the campaign deleted) abandons them at once.
    drain_seconds: float = 15.0
    vapid_subject: str = "mailto:push@pushcamp.dev"
    # Extra push-service hosts (PUSHCAMP_PUSH_ALLOWED_HOSTS), checked again at send time.
    allowed_hosts: frozenset[str] = frozenset()
    events_url: Callable[[], str] = lambda: "http://127.0.0.1:8000/v1/events"


@dataclass(slots=True)
class _LaunchState:
    """What a worker process knows of one launch while sending it."""

    attempts: int = 0
    # Refusals that say the sender is wrong (counts_towards_pause), by status and reason.
    sender_refused: Counter[str] = field(default_factory=Counter)


class DeliveryEngine:
    def __init__(self, db: Database, options: EngineOptions | None = None) -> None:
        self.db = db
        self.options = options or EngineOptions()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._sender: WebPushSender | None = None
        self._vapids: dict[str, tuple[str, Vapid]] = {}
        self._origins: dict[str, bool] = {}
        self._launches: dict[int, _LaunchState] = {}
        self.idle = asyncio.Event()

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self, *, reclaim_all: bool) -> None:
        """Start the workers. ``reclaim_all``: no other worker can exist (embedded mode),
        so batches claimed before a restart are taken again at once instead of after
        their lease."""
        if reclaim_all:
            released = await self._tx(q.release_all)
            if released:
                log.info("resuming %d batch(es) claimed before the restart", released)
        o = self.options
        self._sender = WebPushSender(
            per_host=o.per_host,
            max_pending=o.per_host * 2,
            timeout=o.timeout,
            max_attempts=o.max_attempts,
            max_retry_after=o.max_retry_after,
        )
        self._tasks = [
            asyncio.create_task(self._worker(i), name=f"delivery-{i}") for i in range(o.workers)
        ]

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._sender is not None:
            await self._sender.close()

    def wake(self) -> None:
        """New work was recorded: look now rather than at the next poll."""
        self._wake.set()

    # --- helpers ------------------------------------------------------------------------

    async def _tx(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def run() -> T:
            with self.db.write() as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.to_thread(run)

    async def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def run() -> T:
            with self.db.read() as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.to_thread(run)

    def _may_post(self, origin: str) -> bool:
        """Endpoints were checked at subscribe time; check their origin again before
        posting, in case the operator has since removed a host from the allowed list
        (no SSRF through stored rows). Decided once per origin."""
        allowed = self._origins.get(origin)
        if allowed is None:
            problem = endpoint_problem(origin + "/", self.options.allowed_hosts)
            if problem is not None:
                log.warning("not posting to %s: %s", origin, problem)
            allowed = self._origins[origin] = problem is None
        return allowed

    def _vapid(self, partner_id: str, private_key: str) -> Vapid:
        cached = self._vapids.get(partner_id)
        if cached is None or cached[0] != private_key:
            cached = (private_key, Vapid(private_key, self.options.vapid_subject))
            self._vapids[partner_id] = cached
        return cached[1]

    # --- the work -----------------------------------------------------------------------

    async def _worker(self, index: int) -> None:
        lease = timedelta(seconds=self.options.lease_seconds)
        while not self._stopping:
            try:
                batch = await self._tx(q.claim_batch, self.worker_id, utcnow(), lease, RUNNABLE)
            except Exception:
                log.exception("claiming a batch failed; retrying")
                await asyncio.sleep(self.options.poll_seconds)
                continue
            if batch is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll_seconds)
                continue
            self._wake.set()  # there may be more: let another idle worker look too
            try:
                await self._run_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The batch stays claimed; its lease runs out and it is taken again.
                log.exception("batch %d of launch %d failed", batch.id, batch.launch_id)
                await asyncio.sleep(self.options.poll_seconds)

    async def _heartbeat(self, batch: q.BatchRow) -> None:
        period = self.options.lease_seconds / 3
        lease = timedelta(seconds=self.options.lease_seconds)
        while True:
            await asyncio.sleep(period)
            try:
                await self._tx(q.extend_lease, batch.id, self.worker_id, utcnow() + lease)
            except Exception:
                log.warning("could not extend the lease of batch %d", batch.id)

    async def _run_batch(self, batch: q.BatchRow) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(batch))
        try:
            finished = await self._send_batch(batch)
        finally:
            heartbeat.cancel()
        if finished:
            await self._finish(batch)
        else:
            await self._tx(q.release_batch, batch.id, self.worker_id)

    async def _finish(self, batch: q.BatchRow) -> None:
        """Mark the batch done; the launch's last batch ends the launch (and its campaign)."""

        def finish(conn: Connection) -> bool:
            if not q.finish_batch(conn, batch, self.worker_id):
                return False
            now = utcnow()
            ended = q.set_status(
                conn,
                batch.launch_id,
                LaunchStatus.SENT,
                only_from=RUNNABLE,
                now=now,
                finished=True,
                started=True,
            )
            launch = q.get_launch(conn, batch.launch_id) if ended else None
            if launch is not None:
                campaigns_q.set_status(conn, launch.campaign_id, CampaignStatus.SENT, now)
                # Sender refusals too few to pause are final now.
                q.settle_reason(
                    conn,
                    launch.id,
                    DropReason.SENDER_REFUSED,
                    DropReason.SERVICE_PROVIDER_ERRORS,
                )
            return True

        if await self._tx(finish):
            self._launches.pop(batch.launch_id, None)

    async def _send_batch(self, batch: q.BatchRow) -> bool:
        """Send one batch; True when all of it is recorded, False when its launch was
        stopped or paused on the way (the batch is then given back)."""
        launch = await self._read(q.get_launch, batch.launch_id)
        if launch is None or launch.status not in RUNNABLE:
            return False
        ctx = await self._read(partners_q.get_sender_context, launch.partner_id)
        if ctx is None:
            await self._tx(
                q.set_status, launch.id, LaunchStatus.FAILED, now=utcnow(), finished=True
            )
            return False
        if launch.status == LaunchStatus.QUEUED:
            await self._tx(
                q.set_status,
                launch.id,
                LaunchStatus.SENDING,
                only_from=(LaunchStatus.QUEUED,),
                now=utcnow(),
                started=True,
            )
        request = request_from_dict(launch.request)
        campaign = await self._read(campaigns_q.get_campaign, launch.partner_id, launch.campaign_id)
        state = self._launches.setdefault(launch.id, _LaunchState())
        vapid = self._vapid(launch.partner_id, ctx.vapid_private_key)
        options = PushOptions(ttl=min(request.ttl, 28 * 24 * 3600), topic=launch.topic, vapid=vapid)
        events_url = self.options.events_url()
        language = audience_language(request.language, campaign.language if campaign else None)
        target = (request.target.attribute, request.target.values) if request.target else None
        after = 0
        while True:
            current = await self._read(q.get_launch, launch.id)
            if current is None or current.status not in RUNNABLE:
                return False
            now = utcnow()
            engaged_since = (
                None if request.include_unengaged else now - timedelta(days=ctx.engagement_days)
            )
            page = await self._read(
                q.audience_page,
                partner_id=launch.partner_id,
                launch_id=launch.id,
                lo=batch.lo,
                hi=batch.hi,
                after=after,
                limit=self.options.page_size,
                language=language,
                target=target,
                engaged_since=engaged_since,
            )
            if not page:
                return True
            after = page[-1].id
            recorder = _Recorder(self, launch.partner_id, launch.id)
            to_send = await self._drop_by_rules(page, ctx, recorder, now)
            expires = int(time.time()) + event_tokens.EVENT_TOKEN_LIFETIME
            messages = []
            by_endpoint: dict[str, q.Recipient] = {}
            for r in to_send:
                try:
                    subscription = Subscription(r.endpoint, r.p256dh, r.auth)
                except InvalidSubscription:
                    recorder.drop(r, DropReason.INTERNAL_ERRORS, None)
                    continue
                if not self._may_post(subscription.origin):
                    recorder.drop(r, DropReason.INTERNAL_ERRORS, None)
                    continue
                token = event_tokens.sign(
                    ctx.signing_key, launch.partner_id, launch.id, r.id, expires
                )
                payload = build_payload(
                    request,
                    default_icon=ctx.default_icon,
                    token=token,
                    events_url=events_url,
                    tag=launch.topic,
                )
                by_endpoint[r.endpoint] = r
                messages.append((subscription, payload, options))
            halt = asyncio.Event()
            sending = asyncio.create_task(
                self._send_page(
                    launch.id, _until(halt, messages), by_endpoint, recorder, state, halt
                )
            )
            watching = asyncio.create_task(self._watch(launch.id))
            try:
                await asyncio.wait({sending, watching}, return_when=asyncio.FIRST_COMPLETED)
                paused_elsewhere = (
                    watching.done()
                    and watching.exception() is None
                    and watching.result() == LaunchStatus.PAUSED
                )
                if not sending.done() and paused_elsewhere:
                    # Paused elsewhere: post nothing more, but record what is answered.
                    halt.set()
                    await asyncio.wait({sending}, timeout=self.options.drain_seconds)
            finally:
                for task in (sending, watching):
                    task.cancel()
                await asyncio.gather(sending, watching, return_exceptions=True)
                await recorder.flush()  # whatever was answered before a stop is recorded
            if not sending.cancelled() and sending.exception() is not None:
                raise sending.exception()  # type: ignore[misc]
            if halt.is_set() or sending.cancelled() or not sending.result():
                return False

    async def _watch(self, launch_id: int) -> str | None:
        """Return the launch's status as soon as it is no longer runnable (stopped by a
        delete, paused by another worker; None: gone): the page is then abandoned."""
        while True:
            await asyncio.sleep(STOP_CHECK_SECONDS)
            launch = await self._read(q.get_launch, launch_id)
            if launch is None or launch.status not in RUNNABLE:
                return None if launch is None else launch.status

    async def _send_page(
        self,
        launch_id: int,
        messages: Iterator[tuple[Subscription, bytes, PushOptions]],
        by_endpoint: dict[str, q.Recipient],
        recorder: _Recorder,
        state: _LaunchState,
        halt: asyncio.Event,
    ) -> bool:
        """Send one page and record the outcomes; False if the launch paused itself.
        Pausing sets ``halt``: nothing more is posted, and the answers to the messages
        already posted are still recorded, so a resume does not send them again."""
        assert self._sender is not None
        paused = False
        async for result in self._sender.send_many(messages):
            recipient = by_endpoint[result.subscription.endpoint]
            recorder.outcome(recipient, result)
            state.attempts += 1
            outcome = result.outcome
            if counts_towards_pause(isinstance(outcome, AuthRejected), recipient.vouched):
                status = getattr(outcome, "status", None)
                state.sender_refused[f"{status} {result.detail[:80]}".strip()] += 1
            if recorder.pending >= self.options.record_every:
                await recorder.flush()
            if (
                not paused
                and state.sender_refused
                and should_pause(state.attempts, state.sender_refused.most_common(1)[0][1])
            ):
                paused = True
                halt.set()
                await recorder.flush()
                await self._pause(launch_id, state)
        return not paused

    async def _drop_by_rules(
        self, page: Sequence[q.Recipient], ctx: SenderContext, recorder: _Recorder, now: datetime
    ) -> list[q.Recipient]:
        """Apply the partner's silent hours and frequency cap; record who is dropped."""
        keep: list[q.Recipient] = []
        counts: dict[int, int] = {}
        if ctx.frequency_cap is not None:
            counts = await self._read(
                q.recent_push_counts, [r.id for r in page], now - timedelta(hours=24)
            )
        for r in page:
            minutes = local_minutes(now, r.timezone) if ctx.silent_start is not None else None
            if minutes is not None and in_silent_hours(minutes, ctx.silent_start, ctx.silent_end):
                recorder.drop(r, DropReason.SILENT_HOURS, None)
            elif frequency_capped(counts.get(r.id, 0), ctx.frequency_cap):
                recorder.drop(r, DropReason.FREQUENCY_CAPPED, None)
            else:
                keep.append(r)
        return keep

    async def _pause(self, launch_id: int, state: _LaunchState) -> None:
        reason, count = state.sender_refused.most_common(1)[0]
        text = (
            f"paused: {count} of {state.attempts} messages were refused with {reason} by "
            "the push service, from subscriptions that accepted this partner's pushes "
            "before or were imported: the push service no longer accepts the partner's "
            "VAPID key. Put back the key pair these subscriptions were made with "
            f"(pushcamp vapid import), then run: pushcamp launches resume {launch_id}"
        )
        log.warning("launch %d %s", launch_id, text)
        await self._tx(
            q.set_status, launch_id, LaunchStatus.PAUSED, only_from=RUNNABLE, reason=text
        )
        self._launches.pop(launch_id, None)


def _until(halt: asyncio.Event, items: Sequence[T]) -> Iterator[T]:
    """``items`` one by one, until ``halt`` is set (read lazily by the sender)."""
    for item in items:
        if halt.is_set():
            return
        yield item


class _Recorder:
    """Buffers outcomes of one page and commits them as delivery records."""

    def __init__(self, engine: DeliveryEngine, partner_id: str, launch_id: int) -> None:
        self.engine = engine
        self.partner_id = partner_id
        self.launch_id = launch_id
        self.rows: list[dict[str, Any]] = []
        self.gone: list[int] = []
        self.accepted: list[int] = []

    @property
    def pending(self) -> int:
        return len(self.rows)

    def _add(self, r: q.Recipient, state: str, reason: str | None, status: int | None) -> None:
        self.rows.append(
            {
                "launch_id": self.launch_id,
                "subscriber_id": r.id,
                "partner_id": self.partner_id,
                "state": state,
                "reason": reason,
                "status_code": status,
                "device": r.device,
                "created_at": utcnow(),
            }
        )

    def drop(self, r: q.Recipient, reason: str, status: int | None) -> None:
        PUSHES.labels(reason).inc()
        self._add(r, DeliveryState.DROPPED, reason, status)

    def outcome(self, r: q.Recipient, result: PushResult) -> None:
        outcome = result.outcome
        status = getattr(outcome, "status", None)
        if isinstance(outcome, Sent):
            PUSHES.labels("sent").inc()
            self._add(r, DeliveryState.SENT, None, status)
            if not r.vouched:
                self.accepted.append(r.id)
        elif isinstance(outcome, Gone):
            self.gone.append(r.id)
            self.drop(r, DropReason.UNSUBSCRIPTIONS, status)
        elif isinstance(outcome, TooLarge):
            self.drop(r, DropReason.TOO_LARGE, status)
        elif counts_towards_pause(isinstance(outcome, AuthRejected), r.vouched):
            # Provisional: tried again on resume; serviceProviderErrors if the launch ends.
            self.drop(r, DropReason.SENDER_REFUSED, status)
        else:
            # Rejected (400, other 4xx, a 401/403 from a subscription not vouched for),
            # RetryAfter / Transient after the last retry, or any other failure. Only
            # 404/410 say a subscription is gone: nothing here deactivates it.
            self.drop(r, DropReason.SERVICE_PROVIDER_ERRORS, status)

    async def flush(self) -> None:
        if not self.rows:
            return
        rows, gone, accepted = self.rows, self.gone, self.accepted
        self.rows, self.gone, self.accepted = [], [], []
        partner_id = self.partner_id

        def write(conn: Connection) -> None:
            q.record_deliveries(conn, rows)
            q.mark_accepted(conn, accepted, utcnow())
            if gone:
                subs_q.deactivate_ids(conn, partner_id, gone, "gone", utcnow())

        await self.engine._tx(write)
