"""The ASGI application: routes, middleware and error mapping put together."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from pushcamp import __version__
from pushcamp.api import errors
from pushcamp.api.body import MAX_ID
from pushcamp.api.context import AppContext
from pushcamp.api.cors import PUBLIC_PATHS, CorsHeaders
from pushcamp.api.middleware import AccessLog, BodyLimit, RateLimitHeaders
from pushcamp.api.ratelimit import RateLimiter, build_limiter
from pushcamp.api.routes import campaigns, ops, public, sdk, statistics
from pushcamp.delivery.runner import build_runner
from pushcamp.delivery.webhooks import WebhookDispatcher
from pushcamp.domain.locales import is_locale
from pushcamp.domain.partners import PARTNER_ID_PATTERN
from pushcamp.logs import get_logger
from pushcamp.services.sites import SiteDirectory
from pushcamp.services.tokens import Authenticator
from pushcamp.settings import Settings, get_settings
from pushcamp.store import Database

log = get_logger("pushcamp")
PARTNER_ID_REGEX = f"^{PARTNER_ID_PATTERN.pattern}$"

DESCRIPTION = """
Self-hosted Web Push campaign server. The partner API is call-compatible with Insider
One's Web Push API: send the API token as `Authorization: Bearer <token>` (or the bare
token). Errors: 400 `{"message": "Bad Request", "errors": [...]}`, 401 `{"message":
"Unauthorized"}`, 424 `{"message": "SERVICE:-"}`, 429 `{"message": "Too Many Requests",
"status": 429}` with `Retry-After`.
"""


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    limiter: RateLimiter | None = None,
    migrate: bool = True,
) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database(settings)
    ctx = AppContext(
        settings=settings,
        db=db,
        limiter=limiter or build_limiter(settings),
        auth=Authenticator(db, ttl=settings.auth_cache_seconds),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await run_in_threadpool(ctx.db.migrate)
        # In-process by default; with PUSHCAMP_BROKER_URL this process only publishes
        # recorded launches' batches to the broker, and `pushcamp worker`s send them.
        ctx.runner = build_runner(settings, ctx.db)
        await ctx.runner.start()
        # Webhooks (docs/webhooks.md) are sent beside the runner: here in-process, by
        # each `pushcamp worker` with a broker.
        hooks = None if settings.broker_url else WebhookDispatcher(ctx.db, settings)
        if hooks is not None:
            await hooks.start()
        warm_up()
        log.info("started", database=settings.redacted_database_url(), version=__version__)
        yield
        if hooks is not None:
            await hooks.stop()
        if ctx.runner is not None:
            await ctx.runner.stop()
        await ctx.limiter.aclose()
        ctx.db.dispose()

    app = FastAPI(
        title="pushcamp",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.ctx = ctx
    errors.install(app)
    app.include_router(ops.router)
    app.include_router(campaigns.router)
    app.include_router(statistics.router)
    app.include_router(sdk.router)
    app.include_router(public.router)
    # The panel: server-rendered pages with HTML error pages of their own. Imported here
    # because the panel uses api's context helpers (a module-level import is a cycle).
    from pushcamp.panel.app import create_panel

    app.mount("/panel", create_panel(ctx))
    app.state.sites = SiteDirectory(db, ttl=settings.auth_cache_seconds)
    # Added innermost first: AccessLog sees every response, including BodyLimit's.
    app.add_middleware(CorsHeaders)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        path_limits=dict.fromkeys(PUBLIC_PATHS, settings.public_max_body_bytes),
    )
    app.add_middleware(AccessLog)
    _add_security_scheme(app)
    return app


def warm_up() -> None:
    """Load what the first requests would otherwise load, then take everything alive now
    out of the garbage collector's sight.

    The ISO tables and the framework's objects live as long as the process; without
    ``gc.freeze()`` every full collection walks them again, which showed as a 60-70 ms
    stall every few hundred milliseconds under load (docs/performance.md).
    """
    is_locale("en_US")
    gc.collect()
    gc.freeze()


def _add_security_scheme(app: FastAPI) -> None:
    """Describe the token header in the OpenAPI document (the routes read it themselves)."""
    original = app.openapi

    def openapi() -> dict:  # type: ignore[type-arg]
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {})["securitySchemes"] = {
            "apiToken": {"type": "apiKey", "in": "header", "name": "Authorization"}
        }
        for path, item in schema.get("paths", {}).items():
            if path.startswith(("/v1/", "/v2/")) and path not in PUBLIC_PATHS:
                for operation in item.values():
                    operation["security"] = [{"apiToken": []}]
            for operation in item.values():
                _state_what_is_accepted(operation)
        _walk_partner_ids(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


# What the routes really accept, which their ``str`` parameters do not say (they parse
# them themselves so that a bad value is a 400 naming the field, never a 422).
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "campaign_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "partner_id": {"type": "string", "pattern": PARTNER_ID_REGEX},
}


def _state_what_is_accepted(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "path" and parameter.get("name") in _PATH_SCHEMAS:
            parameter["schema"] = dict(_PATH_SCHEMAS[parameter["name"]])
    # Never a 422: validation failures are 400s (FastAPI documents a 422 of its own).
    operation.get("responses", {}).pop("422", None)


def _walk_partner_ids(node: Any) -> None:
    """Give every ``partner_id`` string property the partner id's pattern."""
    if isinstance(node, dict):
        prop = node.get("properties", {}).get("partner_id")
        if isinstance(prop, dict) and prop.get("type") == "string":
            prop["pattern"] = PARTNER_ID_REGEX
        for value in node.values():
            _walk_partner_ids(value)
    elif isinstance(node, list):
        for value in node:
            _walk_partner_ids(value)
