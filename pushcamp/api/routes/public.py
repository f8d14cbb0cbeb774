"""The public, browser-facing endpoints (contract §3): SDK configuration, subscribe,
unsubscribe, and the events service workers and pages report. No API token: they are
guarded by per-partner CORS (api/cors.py), a per-address rate limit, a small body limit,
and -- for delivery statistics -- a signed token per push.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from pushcamp.api import metrics
from pushcamp.api.body import parse_json, validate
from pushcamp.api.context import call_service, context
from pushcamp.api.cors import check_origin, preflight_headers
from pushcamp.api.schemas import ErrorBody, RateLimitedBody
from pushcamp.domain import text
from pushcamp.domain.event_tokens import peek_partner
from pushcamp.domain.partners import PARTNER_ID_PATTERN
from pushcamp.domain.statistics import parse_conversion
from pushcamp.domain.subscribers import parse_subscription
from pushcamp.errors import InvalidRequest, NotFound, RateLimited
from pushcamp.services import events as event_service
from pushcamp.services import statistics as statistics_service
from pushcamp.services import subscribers as service
from pushcamp.services.sites import SiteDirectory
from pushcamp.store.partners import SiteSettings

router = APIRouter(tags=["subscribers (public, no token)"])

SERVICE_WORKER_URL = "/pushcamp-sw.js"

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad Request"},
    403: {"model": ErrorBody, "description": "The Origin is not one of the partner's sites"},
    413: {"model": ErrorBody, "description": "Body over the public limit (16 KiB)"},
    424: {"model": ErrorBody, "description": "A dependency failed; nothing was written"},
    429: {"model": RateLimitedBody, "description": "Too many requests from this address"},
}


# --- request models: parsed strictly, documented in OpenAPI ------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PushKeys(_Strict):
    p256dh: str = Field(description="base64url P-256 public key of the browser")
    auth: str = Field(description="base64url 16-byte auth secret")


class SubscribeRequest(_Strict):
    partner_id: str = Field(min_length=1, max_length=64)
    endpoint: str = Field(description="https URL on a known push service", max_length=2048)
    keys: PushKeys
    language: str | None = Field(None, description="Browser locale, e.g. en-US (stored en_US)")
    timezone: str | None = Field(None, description="IANA zone, e.g. Europe/Istanbul")
    attributes: dict[str, str | int | float | bool] | None = Field(
        None, description="Custom attributes (at most 32) a launch can target"
    )
    d_wp_browser: str | None = Field(None, description="Derived from the User-Agent if absent")
    d_wp_os: str | None = Field(None, description="Derived from the User-Agent if absent")
    d_wp_device: Literal["desktop", "mobile", "tablet"] | None = None
    old_endpoint: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="pushsubscriptionchange: the endpoint this subscription replaces",
    )


class EndpointRequest(_Strict):
    partner_id: str = Field(min_length=1, max_length=64)
    endpoint: str = Field(min_length=1, max_length=2048)


class TokenEventRequest(_Strict):
    type: Literal["delivered", "clicked", "closed"]
    token: str = Field(min_length=1, max_length=512, description="From the push payload")
    partner_id: str | None = Field(None, description="Optional; must be the token's")
    action: int | None = Field(
        None,
        ge=0,
        le=1,
        description="A clicked event only: the action button clicked (0 or 1), absent for "
        "the notification itself",
    )


class VisitEventRequest(EndpointRequest):
    type: Literal["visit"]


class ConversionEventRequest(_Strict):
    """A purchase on the partner's site after a click (contract §2.4, §3)."""

    type: Literal["conversion"]
    token: str = Field(
        min_length=1, max_length=512, description="The clicked notification's event token"
    )
    value: float = Field(ge=0, description="In the partner's currency; 4 decimals kept")
    currency: str = Field(description="ISO 4217, the partner's currency", examples=["USD"])
    order_id: str | None = Field(None, max_length=64, description="Counted once per order")


class _SubscribeEnvelope(_Strict):
    """What the route reads itself; the subscription proper is the domain's to check."""

    partner_id: str = Field(min_length=1, max_length=64)
    old_endpoint: str | None = Field(None, min_length=1, max_length=2048)


class Success(BaseModel):
    success: bool = True


class SdkConfig(BaseModel):
    partner_id: str
    vapid_public_key: str
    subscribe_url: str
    events_url: str
    service_worker_url: str


def _inline(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """The schema with its ``$defs`` references replaced by the definitions: embedded in
    the OpenAPI document, a ``#/$defs/...`` reference would point nowhere."""
    if defs is None and isinstance(schema, dict):
        defs = schema.get("$defs", {})
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and defs is not None:
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    schema = _inline(schema)
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


# --- shared steps -------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


async def limit_address(request: Request, policy: str) -> None:
    """Count the request against its client address's budget for this endpoint. The
    address is the connection's peer as uvicorn reports it (behind a reverse proxy, run
    uvicorn with the proxy's address in FORWARDED_ALLOW_IPS so that it is the client's)."""
    ctx = context(request)
    address = request.client.host if request.client else "unknown"
    decision = await ctx.limiter.hit(f"ip:{address}:{policy}", ctx.settings.public_per_ip_limit)
    request.state.rate = (policy, decision)
    if not decision.allowed:
        metrics.RATE_LIMITED.labels(policy).inc()
        raise RateLimited(decision.retry_after)


def _directory(request: Request) -> SiteDirectory:
    directory: SiteDirectory = request.app.state.sites
    return directory


async def load_site(request: Request, partner_id: str | None) -> SiteSettings | None:
    if partner_id is None or not PARTNER_ID_PATTERN.fullmatch(partner_id):
        return None
    directory = _directory(request)
    found, site = directory.cached(partner_id)
    if found:
        return site
    return await call_service(request, directory.get, partner_id)


async def partner_site(request: Request, partner_id: str) -> SiteSettings:
    """The partner named in a body, after the origin check: a browser on a site that is
    not the partner's learns nothing, not even whether the partner exists."""
    query = request.query_params.get("partner_id")
    site = await load_site(request, partner_id)
    check_origin(request, site)
    if site is None:
        raise InvalidRequest.of("partner_id", "unknown partner")
    if query is not None and query != partner_id:
        raise InvalidRequest.of("partner_id", "differs from the partner_id in the URL")
    return site


def _text(field: str, value: str) -> str:
    if problem := text.storage_problem(value):
        raise InvalidRequest.of(field, problem)
    return value


async def _body(request: Request) -> Any:
    return parse_json(await request.body())


# --- routes -------------------------------------------------------------------------------


@router.get(
    "/sdk/{partner_id}/config",
    response_model=SdkConfig,
    responses={**ERRORS, 404: {"model": ErrorBody, "description": "Unknown partner"}},
    summary="What the browser SDK needs: VAPID public key and endpoint URLs",
)
async def sdk_config(request: Request, partner_id: str) -> JSONResponse:
    await limit_address(request, "sdk-config")
    site = await load_site(request, partner_id)
    check_origin(request, site)
    if site is None:
        raise NotFound("unknown partner")
    ctx = context(request)
    base = ctx.public_base(request)
    # Cacheable only when the URLs are the configured ones, never when they came from
    # the request's Host.
    cache = "public, max-age=60" if ctx.settings.public_url else "no-store"
    return JSONResponse(
        {
            "partner_id": site.partner_id,
            "vapid_public_key": site.vapid_public_key,
            "subscribe_url": f"{base}/v1/subscriptions",
            "events_url": f"{base}/v1/events",
            "service_worker_url": SERVICE_WORKER_URL,
        },
        headers={"Cache-Control": cache},
    )


@router.post(
    "/v1/subscriptions",
    status_code=201,
    response_model=Success,
    responses={**ERRORS, 200: {"model": Success, "description": "An existing row updated"}},
    openapi_extra=_json_body(SubscribeRequest.model_json_schema()),
    summary="Subscribe (or re-subscribe) a browser: 201 new, 200 updated",
)
async def subscribe(request: Request) -> JSONResponse:
    await limit_address(request, "subscribe")
    data = await _body(request)
    envelope = validate(_SubscribeEnvelope, data)
    site = await partner_site(request, envelope.partner_id)
    settings = context(request).settings
    sub = parse_subscription(
        data,
        allowed_hosts=settings.allowed_push_hosts,
        user_agent=request.headers.get("user-agent"),
    )
    old = _text("old_endpoint", envelope.old_endpoint) if envelope.old_endpoint else None
    created = await call_service(
        request, service.subscribe, context(request).db, site.partner_id, sub, _now(), old
    )
    return JSONResponse({"success": True}, status_code=201 if created else 200)


@router.delete(
    "/v1/subscriptions",
    response_model=Success,
    responses=ERRORS,
    openapi_extra=_json_body(EndpointRequest.model_json_schema()),
    summary="Unsubscribe a browser (200 also when it was not subscribed)",
)
async def unsubscribe(request: Request) -> JSONResponse:
    await limit_address(request, "unsubscribe")
    body = validate(EndpointRequest, await _body(request))
    site = await partner_site(request, body.partner_id)
    endpoint = _text("endpoint", body.endpoint)
    await call_service(
        request, service.unsubscribe, context(request).db, site.partner_id, endpoint, _now()
    )
    return JSONResponse({"success": True})


@router.post(
    "/v1/events",
    response_model=Success,
    responses=ERRORS,
    openapi_extra=_json_body(
        {
            "oneOf": [
                TokenEventRequest.model_json_schema(),
                VisitEventRequest.model_json_schema(),
                ConversionEventRequest.model_json_schema(),
            ]
        }
    ),
    summary="A service worker's delivered/clicked/closed, or a page's visit or conversion",
)
async def post_event(request: Request) -> JSONResponse:
    await limit_address(request, "events")
    data = await _body(request)
    db = context(request).db
    if isinstance(data, dict) and data.get("type") == "visit":
        visit = validate(VisitEventRequest, data)
        visited = await partner_site(request, visit.partner_id)
        endpoint = _text("endpoint", visit.endpoint)
        await call_service(request, service.visit, db, visited.partner_id, endpoint, _now())
        return JSONResponse({"success": True})
    if isinstance(data, dict) and data.get("type") == "conversion":
        return await _conversion(request, data)
    event = validate(TokenEventRequest, data)
    # The partner comes from the token; its signature is checked with that partner's key.
    partner_id = peek_partner(event.token)
    if partner_id is None:
        raise InvalidRequest.of("token", "malformed event token")
    site = await load_site(request, partner_id)
    check_origin(request, site)
    if site is None:
        raise InvalidRequest.of("token", "invalid signature")
    if event.partner_id is not None and event.partner_id != partner_id:
        raise InvalidRequest.of("partner_id", "is not the token's partner")
    await call_service(
        request,
        event_service.record_event,
        db,
        site.signing_key,
        event.type,
        event.token,
        _now(),
        event.action,
    )
    return JSONResponse({"success": True})


async def _conversion(request: Request, data: dict[str, Any]) -> JSONResponse:
    """A conversion: attributed through the click's token, whose partner it is."""
    token = data.get("token")
    if not isinstance(token, str) or not 1 <= len(token) <= 512:
        raise InvalidRequest.of("token", "is required: the clicked notification's event token")
    conversion = parse_conversion(data.get("value"), data.get("currency"), data.get("order_id"))
    partner_id = peek_partner(token)
    if partner_id is None:
        raise InvalidRequest.of("token", "malformed event token")
    site = await load_site(request, partner_id)
    check_origin(request, site)
    if site is None:
        raise InvalidRequest.of("token", "invalid signature")
    await call_service(
        request,
        statistics_service.record_conversion,
        context(request).db,
        site.signing_key,
        token,
        conversion,
        _now(),
    )
    return JSONResponse({"success": True})


async def _preflight(request: Request, methods: str) -> Response:
    """CORS preflight. The partner is named in the query (``?partner_id=``), as the SDK
    does on every URL, since a preflight has no body."""
    await limit_address(request, "preflight")
    if request.headers.get("origin") is None:
        return Response(status_code=204, headers={"Allow": f"{methods}, OPTIONS"})
    site = await load_site(request, request.query_params.get("partner_id"))
    origin = check_origin(request, site)
    assert origin is not None
    return Response(status_code=204, headers=preflight_headers(origin, methods))


@router.options("/v1/subscriptions", include_in_schema=False)
async def preflight_subscriptions(request: Request) -> Response:
    return await _preflight(request, "POST, DELETE")


@router.options("/v1/events", include_in_schema=False)
async def preflight_events(request: Request) -> Response:
    return await _preflight(request, "POST")
