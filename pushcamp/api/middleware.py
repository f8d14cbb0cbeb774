"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pushcamp.api import metrics
from pushcamp.api import ratelimit as rl
from pushcamp.api.body import BodyTooLarge
from pushcamp.api.errors import response_for
from pushcamp.logs import get_logger

log = get_logger("pushcamp.access")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes without reading them whole: at once when
    Content-Length says so, else as soon as the streamed chunks add up past it.
    ``path_limits`` gives some paths (the public endpoints) a smaller limit of their own."""

    def __init__(
        self, app: ASGIApp, limit: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.limit)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False  # the server has already refused a bad length
                if too_big:
                    await response_for(BodyTooLarge())(scope, receive, send)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited_receive, send)


class RateLimitHeaders:
    """Add the rate-limit headers to every response of an authenticated request, errors
    included. The route stores its decision in ``request.state.rate``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                rate = scope.get("state", {}).get("rate")
                if rate is not None:
                    policy, decision = rate
                    message["headers"] = [
                        *message.get("headers", []),
                        *rl.headers(policy, decision),
                    ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AccessLog:
    """One structured line per request (no headers, no query string, no body) and the
    request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_template(scope)
            metrics.observe_request(scope["method"], route, status, elapsed)
            state: dict[str, Any] = scope.get("state", {})
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round(elapsed * 1000, 2),
                partner=state.get("partner_id"),
            )


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"
