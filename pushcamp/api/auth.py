"""Authentication and rate limiting of the partner API."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request

from pushcamp.api import metrics
from pushcamp.api.context import call_service, context
from pushcamp.errors import RateLimited, Unauthorized
from pushcamp.services import tokens
from pushcamp.services.tokens import Caller

# Each v1 endpoint has its own budget at the partner's v1 limit; launch v2 has the v2 limit.
Policy = Literal["create", "launch-v1", "delete", "statistics", "status", "launch-v2"]


async def authorize(request: Request, policy: Policy) -> Caller:
    """Authenticate the token and count the request against ``policy``'s budget.

    The decision is left in ``request.state.rate`` so that every response of this request,
    errors included, carries the rate-limit headers.
    """
    ctx = context(request)
    caller = await call_service(
        request, tokens.authenticate, ctx.db, request.headers.get("authorization")
    )
    request.state.partner_id = caller.partner_id
    limit = caller.v2_limit if policy == "launch-v2" else caller.v1_limit
    decision = ctx.limiter.hit(f"{caller.partner_id}:{policy}", limit)
    request.state.rate = (policy, decision)
    if not decision.allowed:
        metrics.RATE_LIMITED.labels(policy).inc()
        raise RateLimited(decision.retry_after)
    return caller


def require_partner(caller: Caller, partner_id: str) -> None:
    """A token acts only for its own partner; another partner's id gets 401 and no hint
    of whether that partner exists."""
    if partner_id != caller.partner_id:
        raise Unauthorized("partner_id is not the token's partner")
