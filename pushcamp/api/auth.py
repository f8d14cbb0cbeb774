"""Authentication and rate limiting of the partner API."""

from __future__ import annotations

import asyncio
from typing import Literal

from starlette.requests import Request

from pushcamp.api import metrics
from pushcamp.api.context import call_service, context
from pushcamp.errors import RateLimited, Unauthorized
from pushcamp.services.tokens import Caller

# Each v1 endpoint has its own budget at the partner's v1 limit; launch v2 has the v2 limit.
Policy = Literal["create", "launch-v1", "delete", "statistics", "status", "launch-v2"]


async def authorize(request: Request, policy: Policy) -> Caller:
    """Authenticate the token and count the request against ``policy``'s budget.

    The decision is left in ``request.state.rate`` so that every response of this request,
    errors included, carries the rate-limit headers.
    """
    ctx = context(request)
    header = request.headers.get("authorization")
    caller = ctx.auth.cached(header) or await _authenticate_once(request, header)
    request.state.partner_id = caller.partner_id
    limit = caller.v2_limit if policy == "launch-v2" else caller.v1_limit
    decision = await ctx.limiter.hit(f"{caller.partner_id}:{policy}", limit)
    request.state.rate = (policy, decision)
    if not decision.allowed:
        metrics.RATE_LIMITED.labels(policy).inc()
        raise RateLimited(decision.retry_after)
    return caller


async def _authenticate_once(request: Request, header: str | None) -> Caller:
    """Check a token against the database, once for all requests that carry it at the
    same moment: when its cache entry lapses under load, 50 concurrent requests make one
    lookup, not 50 (and do not open 50 connections)."""
    inflight = context(request).auth_inflight
    pending = inflight.get(header)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[Caller] = asyncio.get_running_loop().create_future()
    inflight[header] = future
    try:
        caller = await call_service(request, context(request).auth.authenticate, header)
        future.set_result(caller)
        return caller
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved: waiters get it; nobody else needs a warning
        raise
    finally:
        del inflight[header]


def require_partner(caller: Caller, partner_id: str) -> None:
    """A token acts only for its own partner; another partner's id gets 401 and no hint
    of whether that partner exists."""
    if partner_id != caller.partner_id:
        raise Unauthorized("partner_id is not the token's partner")
