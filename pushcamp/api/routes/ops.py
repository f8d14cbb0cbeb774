"""Operations endpoints (§6): liveness, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pushcamp.api.context import call_service, context
from pushcamp.errors import DependencyUnavailable
from pushcamp.metrics import REGISTRY

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get(
    "/readyz",
    summary="The database (and Redis and the broker, when configured) are reachable",
    responses={503: {"description": "A dependency does not answer (named in `checks`)"}},
)
async def readyz(request: Request) -> JSONResponse:
    """200 when every dependency answers; 503 naming the ones that do not. With
    PUSHCAMP_REDIS_URL set, Redis is one: without it no partner request can be served."""
    ctx = context(request)
    checks: dict[str, str] = {}
    try:
        await call_service(request, ctx.db.ping)
        checks["database"] = "ok"
    except DependencyUnavailable:
        checks["database"] = "unreachable"
    if ctx.settings.redis_url:
        try:
            await ctx.limiter.ping()
            checks["redis"] = "ok"
        except DependencyUnavailable:
            checks["redis"] = "unreachable"
    if ctx.runner is not None:
        # With PUSHCAMP_BROKER_URL, the broker: without it no launch is handed to workers.
        checks.update(await ctx.runner.check())
    if any(state != "ok" for state in checks.values()):
        return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)
    return JSONResponse({"status": "ok", "checks": checks})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
