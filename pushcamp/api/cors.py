"""CORS for the public (browser-facing) endpoints, per partner.

A browser request carries ``Origin``. It is allowed when that origin is one of the
partner's site origins (``pushcamp partners set-site``) or pushcamp's own origin (the demo
page it serves); it is then answered with ``Access-Control-Allow-Origin: <origin>``. Any
other origin gets 403 and no CORS header, before anything is read or written. Requests
without ``Origin`` come from servers, not browsers: CORS does not concern them.

The route decides (:func:`check_origin`) and leaves the allowed origin in the request
state; :class:`CorsHeaders` then adds the headers to every response of that request,
errors included, so the SDK can read why a request failed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pushcamp.api.context import context
from pushcamp.domain.sites import origin_of
from pushcamp.errors import Forbidden
from pushcamp.store.partners import SiteSettings

# Paths whose answers depend on Origin (so caches must key on it).
PUBLIC_PATHS = ("/v1/subscriptions", "/v1/events")
PREFLIGHT_MAX_AGE = "600"
# Readable by the SDK: why and for how long a request was throttled.
EXPOSED = "Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"


def own_origin(request: Request) -> str | None:
    """pushcamp's own origin: from ``PUSHCAMP_PUBLIC_URL``, else the URL this request
    came in on."""
    base = context(request).public_base(request)
    parts = urlsplit(base)
    return origin_of(f"{parts.scheme}://{parts.netloc}")


def check_origin(request: Request, site: SiteSettings | None) -> str | None:
    """The request's allowed origin (None: not a browser request); 403 when its origin is
    not allowed for ``site`` (None: an unknown partner, which allows no origin)."""
    header = request.headers.get("origin")
    if header is None:
        return None
    origin = origin_of(header)
    allowed = origin is not None and (
        (site is not None and origin in site.site_origins) or origin == own_origin(request)
    )
    if not allowed or origin is None:
        raise Forbidden("origin not allowed for this partner")
    request.state.cors_origin = origin
    return origin


def preflight_headers(origin: str, methods: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        "Vary": "Origin",
    }


def is_public_path(path: str) -> bool:
    return path in PUBLIC_PATHS or (path.startswith("/sdk/") and path.endswith("/config"))


class CorsHeaders:
    """Add ``Vary: Origin`` to public responses, and the allow headers when the route
    accepted the request's origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_public_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"vary" not in names:
                    headers.append((b"vary", b"Origin"))
                origin = scope.get("state", {}).get("cors_origin")
                if origin is not None and b"access-control-allow-origin" not in names:
                    headers.append((b"access-control-allow-origin", origin.encode()))
                    headers.append((b"access-control-expose-headers", EXPOSED.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
