"""Campaigns: create (§2.1), launch (§2.2), delete (§2.3) and status (§2.5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pushcamp.api.auth import authorize, require_partner
from pushcamp.api.body import parse_id, parse_json, read_model
from pushcamp.api.context import call_service, context, within_deadline
from pushcamp.api.schemas import (
    CampaignCreated,
    CreateCampaignRequest,
    ErrorBody,
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
async def create_campaign(request: Request) -> JSONResponse:
    caller = await authorize(request, "create")
    body = await read_model(request, CreateCampaignRequest)
    require_partner(caller, body.partner_id)
    campaign = new_campaign(body.title, body.language, body.is_all)
    campaign_id = await within_deadline(
        request, service.create_campaign_async(context(request).db, caller.partner_id, campaign)
    )
    return JSONResponse({"success": True, "campaign_id": campaign_id}, status_code=201)


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
    if ctx.engine is not None:
        ctx.engine.wake()
    return JSONResponse(body)


@router.post("/v1/single/{campaign_id}", responses=ERRORS, summary="Launch (v1 rate limit)")
async def launch_v1(request: Request, campaign_id: str) -> JSONResponse:
    return await _launch(request, campaign_id, "launch-v1")


@router.post("/v2/single/{campaign_id}", responses=ERRORS, summary="Launch (v2 rate limit)")
async def launch_v2(request: Request, campaign_id: str) -> JSONResponse:
    return await _launch(request, campaign_id, "launch-v2")
