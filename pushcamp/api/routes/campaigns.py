"""Campaigns: create (§2.1), launch (§2.2), delete (§2.3) and status (§2.5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pushcamp.api.auth import authorize, require_partner
from pushcamp.api.body import parse_id, parse_json, read_model, validate
from pushcamp.api.context import call_service, context, deadline_seconds
from pushcamp.api.schemas import (
    CampaignCreated,
    CreateCampaignRequest,
    ErrorBody,
    LaunchBody,
    PartnerOnlyRequest,
    RateLimitedBody,
)
from pushcamp.domain.campaigns import new_campaign
from pushcamp.errors import InvalidRequest
from pushcamp.services import campaigns as service
from pushcamp.services import launches

router = APIRouter(tags=["campaigns"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad Request"},
    401: {"model": ErrorBody, "description": "Unauthorized"},
    413: {"model": ErrorBody, "description": "Body over the size limit"},
    424: {"model": ErrorBody, "description": "A dependency failed; nothing was written"},
    429: {"model": RateLimitedBody, "description": "Too Many Requests"},
}


def json_body(model: type[Any]) -> dict[str, Any]:
    """Describe a body in OpenAPI that the route parses itself (strictly, with the
    documented 400s instead of FastAPI's 422)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


@router.post(
    "/v1/single",
    status_code=201,
    response_model=CampaignCreated,
    responses=ERRORS,
    openapi_extra=json_body(CreateCampaignRequest),
    summary="Create a single web push campaign (Draft)",
)
async def create_campaign(request: Request) -> Response:
    caller = await authorize(request, "create")
    partner_id, title, language, is_all = _create_fields(parse_json(await request.body()))
    require_partner(caller, partner_id)
    campaign = new_campaign(title, language, is_all)
    campaign_id = await service.create_campaign_async(
        context(request).db, caller.partner_id, campaign, timeout=deadline_seconds(request)
    )
    # The body JSONResponse would render, without json.dumps: an int needs no escaping.
    return Response(
        b'{"success":true,"campaign_id":%d}' % campaign_id,
        status_code=201,
        media_type="application/json",
    )


def _create_fields(data: Any) -> tuple[str, str, str, bool]:
    """The fields of a create body. The usual well-formed body is checked by hand, which
    costs a fraction of model validation: it passes only bodies that the model accepts in
    strict mode too (the same types and lengths; an ASCII ``partner_id``, whereas the
    model also takes other text). Every other body goes to the model, which refuses it
    or passes it and names every offending field."""
    if type(data) is dict:
        partner_id = data.get("partner_id")
        title = data.get("title")
        language = data.get("language")
        is_all = data.get("is_all", False)
        if (
            type(partner_id) is str
            and 1 <= len(partner_id) <= 64
            and partner_id.isascii()
            and type(title) is str
            and type(language) is str
            and type(is_all) is bool
        ):
            return partner_id, title, language, is_all
    body = validate(CreateCampaignRequest, data)
    return body.partner_id, body.title, body.language, body.is_all


@router.delete(
    "/v1/single/{campaign_id}",
    response_model=CampaignCreated,
    responses=ERRORS,
    openapi_extra=json_body(PartnerOnlyRequest),
    summary="Delete a campaign: it leaves the panel and its title becomes free",
)
async def delete_campaign(request: Request, campaign_id: str) -> JSONResponse:
    caller = await authorize(request, "delete")
    cid = parse_id(campaign_id)
    body = await read_model(request, PartnerOnlyRequest)
    require_partner(caller, body.partner_id)
    await call_service(
        request, service.delete_campaign, context(request).db, caller.partner_id, cid
    )
    return JSONResponse({"success": True, "campaign_id": cid})


@router.get(
    "/v1/single/{campaign_id}",
    responses=ERRORS,
    summary="Campaign status and its launches (pushcamp extension)",
)
async def campaign_status(request: Request, campaign_id: str) -> JSONResponse:
    caller = await authorize(request, "status")
    cid = parse_id(campaign_id)
    status = await call_service(
        request, service.campaign_status, context(request).db, caller.partner_id, cid
    )
    return JSONResponse(status)


async def _launch(request: Request, campaign_id: str, policy: Any) -> JSONResponse:
    caller = await authorize(request, policy)
    cid = parse_id(campaign_id)
    data = parse_json(await request.body())
    if not isinstance(data, dict):
        raise InvalidRequest.of("body", "must be a JSON object")
    partner_id = data.get("partner_id")
    if not isinstance(partner_id, str):
        raise InvalidRequest.of("partner_id", "is required and must be a string")
    require_partner(caller, partner_id)
    ctx = context(request)
    body = await call_service(
        request,
        launches.launch_campaign,
        ctx.db,
        caller.partner_id,
        cid,
        data,
        events_url=ctx.events_url(),
        idempotency_key=request.headers.get("idempotency-key"),
    )
    if ctx.runner is not None:
        ctx.runner.wake()
    return JSONResponse(body)


@router.post(
    "/v1/single/{campaign_id}",
    responses=ERRORS,
    summary="Launch (v1 rate limit)",
    openapi_extra=json_body(LaunchBody),
)
async def launch_v1(request: Request, campaign_id: str) -> JSONResponse:
    return await _launch(request, campaign_id, "launch-v1")


@router.post(
    "/v2/single/{campaign_id}",
    responses=ERRORS,
    summary="Launch (v2 rate limit)",
    openapi_extra=json_body(LaunchBody),
)
async def launch_v2(request: Request, campaign_id: str) -> JSONResponse:
    return await _launch(request, campaign_id, "launch-v2")
