"""The delivery core: given a claimed batch, read its audience in keyset pages, send,
and record what the push service answered. Both runners use it — the in-process runner
(:mod:`pushcamp.delivery.inprocess`, the embedded default) and the Celery runner
(:mod:`pushcamp.delivery.celery_app`, ``pushcamp worker``); neither decides anything
the other could not see: the lease, the pause counters and the launch's events URL are
all in the database.

The rule that makes crashes harmless: a subscriber's delivery record is written only
after its outcome is known, and a batch is marked done only after all its records are
committed. A batch claimed by a worker that died (its lease ran out, or — embedded mode —
the server restarted) is claimed again, and everyone who already has a record is skipped.
So nobody is skipped and only the messages in flight at the crash are sent twice; they
carry the launch's ``Topic``, so a push service replaces the first copy if it is still
waiting.

Database work runs in threads so the event loop keeps serving HTTP (in-process) or
sending other batches (a worker).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Connection

from pushcamp.delivery.decisions import (
    drop_reason,
    pause_key,
    pause_text,
    rule_drop,
    silent_defer_to,
)
from pushcamp.delivery.metrics import pushes
from pushcamp.domain import event_tokens, personalise
from pushcamp.domain.campaigns import CampaignStatus
from pushcamp.domain.launch_codec import request_from_dict
from pushcamp.domain.launches import (
    DeliveryState,
    DropReason,
    LaunchStatus,
    PayloadParts,
    ab_variant_of,
    audience_language,
    content_for,
    payload_parts,
    should_pause,
)
from pushcamp.domain.subscribers import endpoint_problem
from pushcamp.domain.webhooks import GONE, LAUNCH_FINISHED, LAUNCH_PAUSED, LAUNCH_STARTED
from pushcamp.errors import DependencyUnavailable
from pushcamp.logs import get_logger
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store import campaigns as campaigns_q
from pushcamp.store import launches as q
from pushcamp.store import partners as partners_q
from pushcamp.store import pause as pause_q
from pushcamp.store import subscribers as subs_q
from pushcamp.store import webhooks as webhooks_q
from pushcamp.store.models import utcnow
from pushcamp.store.partners import SenderContext
from pushcamp.webpush import (
    Gone,
    InvalidSubscription,
    PushOptions,
    PushResult,
    Sent,
    Subscription,
    Vapid,
    WebPushSender,
)

log = get_logger("pushcamp.delivery")
T = TypeVar("T")
P = ParamSpec("P")

RUNNABLE = (LaunchStatus.QUEUED, LaunchStatus.SENDING)
# How soon a page in progress notices its launch was stopped (a delete) or paused.
STOP_CHECK_SECONDS = 0.25


@dataclass(slots=True)
class EngineOptions:
    workers: int = 4  # batches in progress at once in this process
    page_size: int = 500  # subscribers read per keyset page
    # Outcomes are buffered and their records committed together: every ``record_every``
    # of them, and at the latest ``record_seconds`` after the oldest unwritten one came
    # (so an answer held back by a slow push service does not hold back the others').
    record_every: int = 500
    record_seconds: float = 0.5
    lease_seconds: float = 30.0  # a claimed batch is taken again after this without news
    poll_seconds: float = 1.0  # how often idle workers look for work they were not told of
    per_host: int = 200  # requests in flight per push service
    timeout: float = 10.0
    max_attempts: int = 4
    max_retry_after: float = 60.0
    # When a launch pauses, or this process stops (SIGTERM), the messages already posted
    # are given this long to be answered and recorded (so a resume does not send them
    # again) before the rest are abandoned. A stop (the campaign deleted) abandons them
    # at once.
    drain_seconds: float = 15.0
    vapid_subject: str = "mailto:push@pushcamp.dev"
    # Extra push-service hosts (PUSHCAMP_PUSH_ALLOWED_HOSTS), checked again at send time.
    allowed_hosts: frozenset[str] = frozenset()
    # The events URL of a launch recorded before launches stored their own (0008).
    fallback_events_url: str = "http://127.0.0.1:8000/v1/events"

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineOptions:
        """The options both runners take from pushcamp's settings."""
        base = settings.public_url or f"http://{settings.host}:{settings.port}"
        return cls(
            workers=settings.delivery_workers,
            lease_seconds=settings.delivery_lease_seconds,
            per_host=settings.delivery_per_host,
            timeout=settings.delivery_timeout_seconds,
            max_attempts=settings.delivery_max_attempts,
            max_retry_after=settings.delivery_max_retry_after_seconds,
            drain_seconds=settings.delivery_drain_seconds,
            vapid_subject=settings.vapid_subject,
            allowed_hosts=settings.allowed_push_hosts,
            fallback_events_url=f"{base}/v1/events",
        )


@dataclass(slots=True)
class _Page:
    """What one page of a batch sends: messages and who each is for."""

    messages: list[tuple[Subscription, bytes, PushOptions]]
    by_endpoint: dict[str, q.Recipient]


class DeliveryCore:
    """Sends claimed batches. Open it before use and close it after; ``begin_stop``
    makes every page in progress post nothing more (SIGTERM)."""

    def __init__(self, db: Database, options: EngineOptions | None = None) -> None:
        self.db = db
        self.options = options or EngineOptions()
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stopping = False
        self._sender: WebPushSender | None = None
        self._vapids: dict[str, tuple[str, Vapid]] = {}
        self._origins: dict[str, bool] = {}
        # One event per page being sent: set on stop, so nothing more is posted.
        self._halts: set[asyncio.Event] = set()
        # The newest pause counters this process has seen per launch: a page whose own
        # unwritten refusals would cross the pause threshold writes them at once.
        self._tallies: dict[int, pause_q.PauseTally] = {}
        # Per batch being sent: subscribers held back by silent hours (mode defer), by
        # the instant they end. Written as new batches when the batch is done (_finish).
        self._deferred: dict[int, dict[datetime, list[int]]] = {}
        self.batches_sent = 0  # batches this process finished (tests, logs)

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        o = self.options
        self._sender = WebPushSender(
            per_host=o.per_host,
            max_pending=o.per_host * 2,
            timeout=o.timeout,
            max_attempts=o.max_attempts,
            max_retry_after=o.max_retry_after,
        )

    def begin_stop(self) -> None:
        """Post nothing more; pages in progress record what is answered, then give their
        batch back."""
        self.stopping = True
        for halt in self._halts:
            halt.set()

    async def close(self) -> None:
        if self._sender is not None:
            await self._sender.close()
            self._sender = None

    # --- database calls, typed ----------------------------------------------------------

    async def tx(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(conn, ...)`` in a write transaction, on a thread."""

        def run() -> T:
            with self.db.write() as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.to_thread(run)

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(conn, ...)`` in a read transaction, on a thread."""

        def run() -> T:
            with self.db.read() as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.to_thread(run)

    # --- claiming -----------------------------------------------------------------------

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.options.lease_seconds)

    async def claim_next(self) -> q.BatchRow | None:
        """The oldest batch anyone may take (the in-process runner's way)."""
        return await self.tx(q.claim_batch, self.worker_id, utcnow(), self.lease, RUNNABLE)

    async def claim(self, batch_id: int) -> q.BatchRow | None:
        """This batch, if nobody holds it and its launch is runnable (a Celery task)."""
        return await self.tx(
            q.claim_batch_by_id, batch_id, self.worker_id, utcnow(), self.lease, RUNNABLE
        )

    async def release_all(self) -> int:
        """Give back every claimed batch (embedded mode at start-up: no other worker)."""
        return await self.tx(q.release_all)

    # --- one batch ----------------------------------------------------------------------

    async def run(self, batch: q.BatchRow) -> bool:
        """Send a claimed batch under a renewed lease; mark it done when all of it is
        recorded, else give it back. True when it was finished."""
        heartbeat = asyncio.create_task(self._heartbeat(batch))
        try:
            finished = await self._send_batch(batch)
        finally:
            heartbeat.cancel()
        if finished:
            await self._finish(batch)
            self.batches_sent += 1
            log.info("batch_done", launch_id=batch.launch_id, batch_id=batch.id)
        else:
            self._deferred.pop(batch.id, None)  # decided again when it is taken again
            await self.tx(q.release_batch, batch.id, self.worker_id)
            log.info("batch_given_back", launch_id=batch.launch_id, batch_id=batch.id)
        return finished

    async def _heartbeat(self, batch: q.BatchRow) -> None:
        period = self.options.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self.tx(q.extend_lease, batch.id, self.worker_id, utcnow() + self.lease)
            except Exception as exc:
                log.warning(
                    "lease_not_extended",
                    launch_id=batch.launch_id,
                    batch_id=batch.id,
                    error=type(exc).__name__,
                )

    async def _finish(self, batch: q.BatchRow) -> None:
        """Mark the batch done; the launch's last batch ends the launch (and its campaign)."""

        deferred = self._deferred.pop(batch.id, {})

        def finish(conn: Connection) -> bool:
            # Silent hours that defer: later batches, in the transaction that ends this one.
            q.add_deferred_batches(conn, batch.launch_id, deferred)
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
                webhooks_q.emit_launch(conn, launch.id, LAUNCH_FINISHED)
                # Sender refusals too few to pause are final now.
                q.settle_reason(
                    conn,
                    launch.id,
                    DropReason.SENDER_REFUSED,
                    DropReason.SERVICE_PROVIDER_ERRORS,
                )
            return ended

        if await self.tx(finish):
            self._tallies.pop(batch.launch_id, None)
            log.info("launch_sent", launch_id=batch.launch_id, batch_id=batch.id)

    async def _send_batch(self, batch: q.BatchRow) -> bool:
        """Send one batch; True when all of it is recorded, False when its launch was
        stopped or paused on the way, or this process is stopping (the batch is then
        given back)."""
        launch, ctx, campaign = await self.read(_batch_context, batch.launch_id)
        if launch is None or launch.status not in RUNNABLE:
            return False
        if ctx is None:
            await self.tx(q.set_status, launch.id, LaunchStatus.FAILED, now=utcnow(), finished=True)
            log.warning("launch_failed", launch_id=launch.id, batch_id=batch.id)
            return False
        if launch.status == LaunchStatus.QUEUED:
            await self.tx(
                webhooks_q.set_launch_status,  # q.set_status, emitting launch.started
                LAUNCH_STARTED,
                launch.id,
                LaunchStatus.SENDING,
                only_from=(LaunchStatus.QUEUED,),
                now=utcnow(),
                started=True,
            )
        request = request_from_dict(launch.request)
        vapid = self._vapid(launch.partner_id, ctx.vapid_private_key)
        options = PushOptions(ttl=min(request.ttl, 28 * 24 * 3600), topic=launch.topic, vapid=vapid)
        events_url = launch.events_url or self.options.fallback_events_url
        language = audience_language(request.language, campaign.language if campaign else None)
        target = (request.target.attribute, request.target.values) if request.target else None
        # Silent hours that defer: not later than the launch's TTL from its start.
        defer_until = (
            _aware(launch.started_at or utcnow()) + timedelta(seconds=request.ttl)
            if ctx.silent_hours_mode == "defer"
            else None
        )
        after = 0
        while not self.stopping:
            now = utcnow()
            engaged_since = (
                None if request.include_unengaged else now - timedelta(days=ctx.engagement_days)
            )
            audience = await self.read(
                _page_if_runnable,
                partner_id=launch.partner_id,
                launch_id=launch.id,
                lo=batch.lo,
                hi=batch.hi,
                after=after,
                limit=self.options.page_size,
                language=language,
                target=target,
                engaged_since=engaged_since,
                subset=batch.subset,
            )
            if audience is None:
                return False
            if not audience:
                return True
            after = audience[-1].id
            # A short page, or one that reached the batch's end, is its last: no read
            # to learn that the next is empty (one thread hop and query per batch).
            last = len(audience) < self.options.page_size or after >= batch.hi
            if batch.send_until is not None and now > _aware(batch.send_until):
                # A local-time batch reached after its window: not sent a day late.
                missed = _Recorder(self, launch.partner_id, launch.id, batch.id)
                for r in audience:
                    missed.drop(r, DropReason.LOCAL_TIME_MISSED, None)
                await missed.flush()
                if last:
                    return True
                continue
            recorder = _Recorder(
                self, launch.partner_id, launch.id, batch.id, splits=[v.split for v in request.ab]
            )
            to_send = await self._drop_by_rules(
                audience, ctx, recorder, now, defer=(batch.id, defer_until)
            )
            signer = event_tokens.TokenSigner(
                ctx.signing_key,
                launch.partner_id,
                launch.id,
                int(time.time()) + event_tokens.EVENT_TOKEN_LIFETIME,
            )
            # The payload around the token, per text (one for a launch without
            # personalisation, variants or an A/B test).
            parts: dict[tuple[str, str], PayloadParts] = {}
            page = _Page([], {})
            for r in to_send:
                try:
                    subscription = Subscription(r.endpoint, r.p256dh, r.auth)
                except InvalidSubscription:
                    recorder.drop(r, DropReason.INTERNAL_ERRORS, None)
                    continue
                if not self._may_post(subscription.origin, launch.id, batch.id):
                    recorder.drop(r, DropReason.INTERNAL_ERRORS, None)
                    continue
                # This subscriber's text: its A/B arm's or its language's, personalised.
                text = content_for(
                    request,
                    language=r.language,
                    attributes=r.attributes or {},
                    variant=ab_variant_of(request, launch.id, r.id),
                )
                around = parts.get(text)
                if around is None:
                    around = parts[text] = payload_parts(
                        request,
                        default_icon=ctx.default_icon,
                        events_url=events_url,
                        tag=launch.topic,
                        title=text[0],
                        description=text[1],
                    )
                payload = around.with_token(signer.sign(r.id))
                page.by_endpoint[r.endpoint] = r
                page.messages.append((subscription, payload, options))
            if self.stopping:
                await recorder.flush()
                return False
            if launch.max_per_minute is not None:
                if not await self._send_throttled(launch, page, recorder):
                    return False
            elif not await self._send_page(launch.id, page, recorder):
                return False
            if last:
                return True
        return False

    async def _send_throttled(self, launch: q.LaunchRow, page: _Page, recorder: _Recorder) -> bool:
        """Send a page of a throttled launch in chunks of a tenth of a second's worth of
        its rate (at least one message), each in a send slot taken from the launch row (so
        every worker together keeps the rate; store.launches.take_send_slot), waiting for
        the slot's start: at 600 a minute, one message every 0.1 s."""
        rate = launch.max_per_minute
        assert rate is not None
        size = max(1, -(-rate // 600))
        for start in range(0, len(page.messages), size):
            chunk = page.messages[start : start + size]
            taken = await self.tx(q.take_send_slot, launch.id, len(chunk), utcnow())
            if taken is not None and not await self._wait_until(launch.id, taken[0]):
                return False
            if not await self._send_page(launch.id, _Page(chunk, page.by_endpoint), recorder):
                return False
        return True

    async def _wait_until(self, launch_id: int, moment: datetime) -> bool:
        """Sleep until ``moment`` (by pushcamp's clock); False if this process begins to
        stop or the launch stops being runnable meanwhile (checked every second)."""
        while (left := (moment - utcnow()).total_seconds()) > 0:
            await asyncio.sleep(min(left, 1.0))
            if self.stopping:
                return False
            if left > 1.0:
                current = await self.read(q.get_launch, launch_id)
                if current is None or current.status not in RUNNABLE:
                    return False
        return not self.stopping

    async def _send_page(self, launch_id: int, page: _Page, recorder: _Recorder) -> bool:
        """Post one page while watching the launch; True when all of it was answered and
        recorded and the launch may go on."""
        halt = asyncio.Event()
        self._halts.add(halt)
        sending = asyncio.create_task(
            self._post(launch_id, _until(halt, page.messages), page.by_endpoint, recorder, halt)
        )
        watching = asyncio.create_task(self._watch(launch_id))
        try:
            await asyncio.wait({sending, watching}, return_when=asyncio.FIRST_COMPLETED)
            paused_elsewhere = (
                watching.done()
                and watching.exception() is None
                and watching.result() == LaunchStatus.PAUSED
            )
            if not sending.done() and paused_elsewhere:
                # Paused by another page or worker: post nothing more, but record what
                # is answered.
                halt.set()
            if not sending.done() and halt.is_set():
                # Paused, or this process is stopping (SIGTERM): the messages already
                # posted are answered and recorded before the batch is given back.
                await asyncio.wait({sending}, timeout=self.options.drain_seconds)
        finally:
            self._halts.discard(halt)
            for task in (sending, watching):
                task.cancel()
            await asyncio.gather(sending, watching, return_exceptions=True)
            await recorder.flush()  # whatever was answered before a stop is recorded
        if not sending.cancelled() and (error := sending.exception()) is not None:
            raise error
        return not (halt.is_set() or sending.cancelled() or not sending.result())

    async def _watch(self, launch_id: int) -> str | None:
        """Return the launch's status as soon as it is no longer runnable (stopped by a
        delete, paused by another worker; None: gone): the page is then abandoned."""
        while True:
            await asyncio.sleep(STOP_CHECK_SECONDS)
            status = await self.read(q.launch_status, launch_id)
            if status not in RUNNABLE:
                return status

    async def _post(
        self,
        launch_id: int,
        messages: Iterator[tuple[Subscription, bytes, PushOptions]],
        by_endpoint: dict[str, q.Recipient],
        recorder: _Recorder,
        halt: asyncio.Event,
    ) -> bool:
        """Send and record; False if the launch paused (here or in another worker).
        Pausing sets ``halt``: nothing more is posted, and the answers to the messages
        already posted are still recorded, so a resume does not send them again."""
        assert self._sender is not None
        # Answers come in fast: their records are committed ``record_every`` at a time.
        # One held back (a slow push service, a Retry-After) must not hold back the
        # others': this task commits whatever has waited ``record_seconds``.
        stop = asyncio.Event()
        aged = asyncio.create_task(self._flush_aged(recorder, halt, stop))
        try:
            async for result in self._sender.send_many(messages):
                recipient = by_endpoint[result.subscription.endpoint]
                recorder.outcome(recipient, result)
                if recorder.pending >= self.options.record_every or (
                    not recorder.paused and recorder.may_cross_pause(self._tallies.get(launch_id))
                ):
                    await recorder.flush()
                if recorder.paused and not halt.is_set():
                    halt.set()
        finally:
            stop.set()  # a commit in progress is finished, not abandoned
            await aged
        await recorder.flush()
        return not recorder.paused

    async def _flush_aged(
        self, recorder: _Recorder, halt: asyncio.Event, stop: asyncio.Event
    ) -> None:
        """Until ``stop``: commit the recorder's rows once the oldest is
        ``record_seconds`` old."""
        seconds = self.options.record_seconds
        while not stop.is_set():
            wait = recorder.due_in(seconds)
            try:
                await asyncio.wait_for(stop.wait(), seconds if wait is None else wait)
            except TimeoutError:
                if recorder.due_in(seconds) != 0.0:
                    continue
                try:
                    await recorder.flush()
                except BaseException:
                    halt.set()  # post nothing more: the page ends with this error
                    raise
                if recorder.paused and not halt.is_set():
                    halt.set()

    async def _drop_by_rules(
        self,
        page: Sequence[q.Recipient],
        ctx: SenderContext,
        recorder: _Recorder,
        now: datetime,
        defer: tuple[int, datetime | None] = (0, None),
    ) -> list[q.Recipient]:
        """Apply the partner's silent hours and frequency cap; record who is dropped.
        ``defer``: (the batch, the latest instant) when silent hours defer: a subscriber
        whose silent hours end by then is held for a later batch instead of dropped."""
        counts: dict[int, int] = {}
        if ctx.frequency_cap is not None:
            counts = await self.read(
                q.recent_push_counts, [r.id for r in page], now - timedelta(hours=24)
            )
        keep: list[q.Recipient] = []
        for r in page:
            reason = rule_drop(
                now,
                r.timezone,
                counts.get(r.id, 0),
                frequency_cap=ctx.frequency_cap,
                silent_start=ctx.silent_start,
                silent_end=ctx.silent_end,
            )
            if reason == DropReason.SILENT_HOURS and defer[1] is not None:
                ends = silent_defer_to(now, r.timezone, ctx.silent_start, ctx.silent_end, defer[1])
                if ends is not None:
                    self._deferred.setdefault(defer[0], {}).setdefault(ends, []).append(r.id)
                    continue
            if reason is None:
                keep.append(r)
            else:
                recorder.drop(r, reason, None)
        return keep

    # --- helpers ------------------------------------------------------------------------

    def _may_post(self, origin: str, launch_id: int, batch_id: int) -> bool:
        """Endpoints were checked at subscribe time; check their origin again before
        posting, in case the operator has since removed a host from the allowed list
        (no SSRF through stored rows). Decided once per origin."""
        allowed = self._origins.get(origin)
        if allowed is None:
            problem = endpoint_problem(origin + "/", self.options.allowed_hosts)
            if problem is not None:
                log.warning(
                    "origin_not_allowed",
                    origin=origin,
                    problem=problem,
                    launch_id=launch_id,
                    batch_id=batch_id,
                )
            allowed = self._origins[origin] = problem is None
        return allowed

    def _vapid(self, partner_id: str, private_key: str) -> Vapid:
        cached = self._vapids.get(partner_id)
        if cached is None or cached[0] != private_key:
            cached = (private_key, Vapid(private_key, self.options.vapid_subject))
            self._vapids[partner_id] = cached
        return cached[1]


def _aware(moment: datetime) -> datetime:
    # SQLite hands stored times back without their zone (they are UTC).
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _batch_context(
    conn: Connection, launch_id: int
) -> tuple[q.LaunchRow | None, partners_q.SenderContext | None, campaigns_q.CampaignRow | None]:
    """What a batch is sent with: its launch, the partner's sender context and the
    campaign (None where missing), in one read: one thread hop per batch, not three."""
    launch = q.get_launch(conn, launch_id)
    if launch is None or launch.status not in RUNNABLE:
        return launch, None, None
    return (
        launch,
        partners_q.get_sender_context(conn, launch.partner_id),
        campaigns_q.get_campaign(conn, launch.partner_id, launch.campaign_id),
    )


def _page_if_runnable(conn: Connection, *, launch_id: int, **page: Any) -> list[q.Recipient] | None:
    """The launch's next audience page (:func:`store.launches.audience_page`), or None
    when the launch is no longer runnable: both in one read, one thread hop per page."""
    if q.launch_status(conn, launch_id) not in RUNNABLE:
        return None
    return q.audience_page(conn, launch_id=launch_id, **page)


def _until(halt: asyncio.Event, items: Sequence[T]) -> Iterator[T]:
    """``items`` one by one, until ``halt`` is set (read lazily by the sender)."""
    for item in items:
        if halt.is_set():
            return
        yield item


@dataclass(frozen=True, slots=True)
class _Flush:
    """One group of outcomes, written in one transaction."""

    rows: list[dict[str, object]]
    gone: list[int]
    accepted: list[int]
    attempts: int
    refusals: Counter[str]


class _Recorder:
    """Buffers the outcomes of one page and commits them as delivery records, together
    with the launch's pause counters; the transaction that makes them cross the pause
    threshold pauses the launch, whichever worker it runs in."""

    def __init__(
        self,
        core: DeliveryCore,
        partner_id: str,
        launch_id: int,
        batch_id: int,
        splits: Sequence[int] = (),
    ):
        self.core = core
        # The A/B splits of the launch: each record notes its subscriber's arm.
        self.splits = tuple(splits)
        self.partner_id = partner_id
        self.launch_id = launch_id
        self.batch_id = batch_id
        self.rows: list[dict[str, object]] = []
        self.gone: list[int] = []
        self.accepted: list[int] = []
        self.attempts = 0
        self.refusals: Counter[str] = Counter()
        # Outcomes by label for the pushes counter, added to it once per flush.
        self.counted: Counter[str] = Counter()
        self.paused = False
        self.oldest = 0.0  # when the oldest unwritten row was added (time.monotonic)

    @property
    def pending(self) -> int:
        return len(self.rows)

    def due_in(self, seconds: float) -> float | None:
        """Seconds until the oldest unwritten row is ``seconds`` old (None: none)."""
        if not self.rows:
            return None
        return max(0.0, self.oldest + seconds - time.monotonic())

    def may_cross_pause(self, known: pause_q.PauseTally | None) -> bool:
        """Whether this page's unwritten outcomes, added to the counters last seen, could
        reach the pause threshold (then they are written now rather than in a while)."""
        if not self.refusals:
            return False
        attempts = self.attempts + (known.attempts if known else 0)
        top = self.refusals.most_common(1)[0][1] + (known.top_count if known else 0)
        return should_pause(attempts, top)

    def _add(self, r: q.Recipient, state: str, reason: str | None, status: int | None) -> None:
        if not self.rows:
            self.oldest = time.monotonic()
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
                "variant": personalise.ab_variant(self.splits, self.launch_id, r.id),
            }
        )

    def drop(self, r: q.Recipient, reason: str, status: int | None) -> None:
        self.counted[reason] += 1
        self._add(r, DeliveryState.DROPPED, reason, status)

    def outcome(self, r: q.Recipient, result: PushResult) -> None:
        outcome = result.outcome
        status = getattr(outcome, "status", None)
        self.attempts += 1
        key = pause_key(outcome, r.vouched, result.detail)
        if key is not None:
            self.refusals[key] += 1
        reason = drop_reason(outcome, r.vouched)
        if reason is None:
            assert isinstance(outcome, Sent)
            self.counted["sent"] += 1
            self._add(r, DeliveryState.SENT, None, status)
            if not r.vouched:
                self.accepted.append(r.id)
            return
        if isinstance(outcome, Gone):
            self.gone.append(r.id)
        self.drop(r, reason, status)

    async def flush(self) -> None:
        if self.counted:
            for label, count in self.counted.items():
                pushes(label).inc(count)
            self.counted.clear()
        if not self.rows and not self.attempts:
            return
        group = _Flush(self.rows, self.gone, self.accepted, self.attempts, self.refusals)
        self.rows, self.gone, self.accepted = [], [], []
        self.attempts, self.refusals = 0, Counter()
        tally, paused_now = await self._commit(group)
        self.core._tallies[self.launch_id] = tally
        if paused_now:
            self.paused = True
            log.warning(
                "launch_paused",
                launch_id=self.launch_id,
                batch_id=self.batch_id,
                attempts=tally.attempts,
                refused=tally.top_count,
                refusal=tally.top_reason,
            )
        elif tally.top_count and should_pause(tally.attempts, tally.top_count):
            self.paused = True  # another worker's write paused it first

    async def _commit(self, group: _Flush) -> tuple[pause_q.PauseTally, bool]:
        """Write a group, trying again while the database is away: its answers are known,
        and giving the page up would send its messages a second time (a third, if the
        outage outlasts the next try). The page posts nothing new meanwhile, since its
        loop waits here. Only a stopping worker gives up; a restart resends at most what
        this group held (the in-flight window)."""
        delay = 0.2
        while True:
            try:
                return await self.core.tx(self._write, group)
            except DependencyUnavailable as exc:
                if self.core.stopping:
                    raise
                log.warning(
                    "records_waiting_for_database",
                    launch_id=self.launch_id,
                    batch_id=self.batch_id,
                    records=len(group.rows),
                    error=str(exc),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _write(self, conn: Connection, group: _Flush) -> tuple[pause_q.PauseTally, bool]:
        now = utcnow()
        q.record_deliveries(conn, group.rows)
        q.mark_accepted(conn, group.accepted, now)
        if group.gone:
            subs_q.deactivate_ids(conn, self.partner_id, group.gone, "gone", now)
            webhooks_q.emit_subscriber_event(
                conn, self.partner_id, GONE, group.gone, launch_id=self.launch_id
            )
        tally = pause_q.add_to_tally(conn, self.launch_id, group.attempts, group.refusals)
        if tally.top_reason is None or not should_pause(tally.attempts, tally.top_count):
            return tally, False
        text = pause_text(self.launch_id, tally.top_reason, tally.top_count, tally.attempts)
        paused = q.set_status(
            conn, self.launch_id, LaunchStatus.PAUSED, only_from=RUNNABLE, reason=text
        )
        if paused:
            webhooks_q.emit_launch(conn, self.launch_id, LAUNCH_PAUSED)
        return tally, paused
