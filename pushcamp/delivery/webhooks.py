"""The webhook dispatcher: sends the webhooks' outbox (``webhook_events``) to the
partners' URLs. It runs beside the delivery runner: inside the API server with the
in-process runner, inside each ``pushcamp worker`` with the Celery runner (several
dispatchers share the work through leases; PostgreSQL skips rows another one holds).

Each round claims up to ``PUSHCAMP_WEBHOOK_BATCH_SIZE`` due events of one webhook, POSTs
them as one signed JSON batch (never following a redirect, within a timeout) and marks
them done on a 2xx answer; any other outcome schedules their next attempt with backoff
and jitter, and after ``PUSHCAMP_WEBHOOK_MAX_AGE_SECONDS`` since their first attempt
dead-letters them. Delivery is at least once: a receiver de-duplicates on the event id.

No SSRF: the URL is checked again before each POST, and the host's addresses are
resolved by a resolver that drops private, loopback and link-local ones (unless the
operator listed the host), so a name that re-resolves to an internal address (DNS
rebinding) is never connected to.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Concatenate, ParamSpec, TypeVar

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from sqlalchemy.engine import Connection

from pushcamp import __version__
from pushcamp.domain.webhooks import (
    SIGNATURE_HEADER,
    address_problem,
    backoff_delay,
    batch_body,
    event_json,
    parse_schedule,
    signature_header,
    url_problem,
)
from pushcamp.logs import get_logger
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store import webhooks as q
from pushcamp.store.models import utcnow

log = get_logger("pushcamp.webhooks")

P = ParamSpec("P")
T = TypeVar("T")

USER_AGENT = f"pushcamp-webhooks/{__version__}"
WORKERS = 4


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then keeps only public addresses (all
    of them for a host the operator listed). None left: the connection fails."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self._allowed = allowed
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        name = host.lower().rstrip(".")
        if name in self._allowed or f"{name}:{port}" in self._allowed:
            return found
        kept = [r for r in found if address_problem(r["host"]) is None]
        if not kept:
            raise OSError(f"{host} resolves only to private, loopback or link-local addresses")
        return kept

    async def close(self) -> None:
        await self._inner.close()


class WebhookDispatcher:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.allowed = settings.allowed_webhook_hosts
        self.schedule = parse_schedule(settings.webhook_backoff_seconds)
        self.max_age = timedelta(seconds=settings.webhook_max_age_seconds)
        self.timeout = settings.webhook_timeout_seconds
        self.batch_size = settings.webhook_batch_size
        self.poll = settings.webhook_poll_seconds
        self.lease = timedelta(seconds=max(60.0, self.timeout * 3))
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stopping = False
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # While nothing is due, one worker looks every ``poll`` seconds and the others
        # wait until it finds something (each look is a write transaction: four of them
        # a second, in every process, cost an idle worker process two thirds of its CPU).
        self._looking = False
        self._found = asyncio.Event()
        self.posts = 0  # POSTs made by this dispatcher (logs, tests)

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.allowed), limit=WORKERS * 2, use_dns_cache=False
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": USER_AGENT},
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"webhooks-{i}") for i in range(WORKERS)
        ]

    async def stop(self) -> None:
        """Stop: POSTs in flight are abandoned; their events stay pending under a lease
        and are sent again after it (at least once)."""
        self.stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _tx(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        def run() -> T:
            with self.db.write() as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.to_thread(run)

    async def _worker(self) -> None:
        while not self.stopping:
            try:
                claimed = await self._tx(
                    q.claim_due, self.worker_id, utcnow(), self.lease, self.batch_size
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook_claim_failed", error=type(exc).__name__)
                claimed = None
            if claimed is None:
                await self._idle()
                continue
            self._found.set()  # there may be more: the idle workers look too
            try:
                await self.send(*claimed)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The events stay claimed; their lease runs out and they are taken again.
                log.exception("webhook_send_failed", webhook_id=claimed[0].id)
                await asyncio.sleep(self.poll)

    async def _idle(self) -> None:
        """Nothing was due: look again in ``poll`` seconds if no other worker is looking,
        else wait until one finds something. One worker is always looking while any is
        idle: the first to come here when none is."""
        if self._looking:
            self._found.clear()
            await self._found.wait()
            return
        self._looking = True
        try:
            await asyncio.sleep(self.poll)
        finally:
            self._looking = False

    async def send(self, hook: q.WebhookRow, events: list[q.EventRow]) -> bool:
        """POST ``events`` to ``hook`` as one signed batch and record the outcome."""
        error = await self._post(hook, events)
        now = utcnow()
        if error is None:
            await self._tx(q.mark_done, [e.id for e in events], self.worker_id, now)
            log.info("webhook_delivered", webhook_id=hook.id, events=len(events))
            return True

        def record(conn: Connection) -> int:
            dead = 0
            for event in events:
                first = event.first_attempt_at or now
                if now - first >= self.max_age:
                    q.mark_failed(conn, event, now, error, None)
                    dead += 1
                    continue
                delay = backoff_delay(event.attempts + 1, self.schedule, random.random())
                due = min(now + timedelta(seconds=delay), first + self.max_age)
                q.mark_failed(conn, event, now, error, due)
            return dead

        dead = await self._tx(record)
        log.warning(
            "webhook_failed", webhook_id=hook.id, events=len(events), error=error, dead=dead
        )
        return False

    async def _post(self, hook: q.WebhookRow, events: list[q.EventRow]) -> str | None:
        """None when the receiver answered 2xx, else what went wrong (stored with the
        events, shown in the dead-letter list)."""
        problem = url_problem(hook.url, self.allowed)
        if problem is not None:
            return f"url {problem}"
        body = batch_body(event_json(e.event_id, e.type, e.created_at, e.data) for e in events)
        timestamp = int(utcnow().timestamp())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(hook.secret, timestamp, body),
            "Pushcamp-Webhook-Id": str(hook.id),
        }
        assert self._session is not None
        self.posts += 1
        try:
            async with self._session.post(
                hook.url, data=body, headers=headers, allow_redirects=False
            ) as answer:
                await answer.content.readany()  # a little of the body, then let it go
                status = answer.status
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        if 200 <= status < 300:
            return None
        if 300 <= status < 400:
            return f"HTTP {status} (redirects are not followed)"
        return f"HTTP {status}"


class DispatcherThread:
    """The dispatcher on an asyncio loop of its own thread (the Celery worker, whose
    task threads have no loop of their own to share)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.dispatcher = WebhookDispatcher(db, settings)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="webhooks-loop")

    def start(self) -> DispatcherThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.dispatcher.start(), self.loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            future = asyncio.run_coroutine_threadsafe(self.dispatcher.stop(), self.loop)
            future.result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
