"""What every route needs, built once per app: settings, database, rate limiter."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from pushcamp.api.ratelimit import RateLimiter
from pushcamp.settings import Settings
from pushcamp.store import Database


@dataclass(slots=True)
class AppContext:
    settings: Settings
    db: Database
    limiter: RateLimiter


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
