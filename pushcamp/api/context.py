"""What every route needs, built once per app: settings, database, rate limiter; and the
one way routes call the (blocking) service layer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from pushcamp.api.ratelimit import RateLimiter
from pushcamp.delivery.runner import Runner
from pushcamp.errors import DependencyUnavailable, InvalidRequest
from pushcamp.services.tokens import Authenticator, Caller
from pushcamp.settings import Settings
from pushcamp.store import Database
from pushcamp.store.db import CommitGuard, commit_guard

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(slots=True)
class AppContext:
    settings: Settings
    db: Database
    limiter: RateLimiter
    auth: Authenticator
    # Token checks in progress, shared by concurrent requests with the same header.
    auth_inflight: dict[str | None, asyncio.Future[Caller]] = field(default_factory=dict)
    # How launches get sent (delivery.runner): in this process, or published to the
    # broker for `pushcamp worker`s. None until the app has started.
    runner: Runner | None = None
    # Where this server listens, once it does (the default public URL).
    base_url: str | None = None

    def public_base(self, request: Request | None = None) -> str:
        """Where browsers reach pushcamp, without a trailing slash: PUSHCAMP_PUBLIC_URL;
        else the URL ``request`` came in on, when its Host is one the operator trusts
        (400 on ``Host`` otherwise: a client never chooses a URL pushcamp hands out);
        else where this server listens."""
        if self.settings.public_url:
            return self.settings.public_url
        if request is not None:
            check_host(request, self.settings.trusted_hosts)
            return str(request.base_url).rstrip("/")
        base = self.base_url or f"http://{self.settings.host}:{self.settings.port}"
        return base.rstrip("/")

    def events_url(self) -> str:
        return self.public_base() + "/v1/events"


_HOST = re.compile(r"(?P<name>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?")


def check_host(request: Request, trusted: frozenset[str]) -> None:
    """400 unless the request's Host names one of ``trusted`` (any port)."""
    found = _HOST.fullmatch(request.headers.get("host", ""))
    if found is None or found.group("name").lower() not in trusted:
        raise InvalidRequest.of(
            "Host", "not a trusted host name; set PUSHCAMP_PUBLIC_URL or PUSHCAMP_ALLOWED_HOSTS"
        )


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def deadline_seconds(request: Request) -> float:
    """How long service work may take before the request gets 424 (see within_deadline)."""
    return context(request).settings.db_timeout_seconds * 2


async def within_deadline(request: Request, work: Awaitable[T]) -> T:
    """Await service work with a deadline.

    The driver's own timeouts cover a refused or reset connection; the deadline covers
    the case they cannot see, a database that stops answering on an open connection
    (a network partition): the request then gets 424 instead of hanging.
    """
    timeout = deadline_seconds(request)
    try:
        async with asyncio.timeout(timeout):
            return await work
    except TimeoutError as exc:
        raise DependencyUnavailable(f"no answer within {timeout:.0f}s") from exc


async def call_service(
    request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run a blocking service call in the thread pool, within the request deadline.

    At the deadline the request gets 424, and the call, which may still be waiting on
    the database in its thread, can no longer commit (:class:`CommitGuard`): a 424 never
    hides a write that lands once the database answers again. If its COMMIT is already
    under way, the answer is that COMMIT's outcome, awaited up to one more deadline (only
    a COMMIT that gets no answer at all is left in doubt, as for any database client).
    """
    guard = CommitGuard()
    reset = commit_guard.set(guard)
    try:  # the task takes a copy of this context, guard included
        work = asyncio.ensure_future(run_in_threadpool(fn, *args, **kwargs))
    finally:
        commit_guard.reset(reset)
    work.add_done_callback(_retrieve)
    timeout = deadline_seconds(request)
    try:
        return await asyncio.wait_for(asyncio.shield(work), timeout)
    except TimeoutError:
        pass
    if not guard.abandon():
        try:
            return await asyncio.wait_for(asyncio.shield(work), timeout)
        except TimeoutError:
            pass
    raise DependencyUnavailable(f"no answer within {timeout:.0f}s")


def _retrieve(work: asyncio.Future[Any]) -> None:
    # An abandoned call's outcome is nobody's business any more; retrieving it keeps
    # asyncio from logging "exception was never retrieved".
    if not work.cancelled():
        work.exception()
