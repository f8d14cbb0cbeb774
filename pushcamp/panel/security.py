"""The panel's session cookie, its CSRF checks, and the sign-in brute-force guard.

- The cookie holds only a random session id: HttpOnly (no script reads it), SameSite=Lax
  (not sent with another site's POST), Path=/panel, and Secure when pushcamp's public
  URL is https.
- Every state-changing form carries the session's CSRF token in a hidden field, checked
  in constant time; a POST without it is refused with 403 before anything changes.
  Every POST (sign-in included, which has no session yet) is also refused when the
  browser says it comes from another site (``Sec-Fetch-Site``/``Origin``).
- Sign-in attempts count against a per-address budget (429 beyond it), so tokens cannot
  be guessed at speed from one address.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from pushcamp.api.context import AppContext, call_service
from pushcamp.api.cors import own_origin
from pushcamp.domain.sites import origin_of
from pushcamp.errors import PushcampError, RateLimited
from pushcamp.services import panel_sessions
from pushcamp.services.panel_sessions import SESSION_LIFETIME, PanelSession

COOKIE = "pushcamp_session"
COOKIE_PATH = "/panel"
CSRF_FIELD = "csrf_token"


class LoginRequired(PushcampError):
    """No live session: the browser is sent to the sign-in page."""


class CsrfRejected(PushcampError):
    """A state-changing request without this session's CSRF token, or from another site
    (HTTP 403)."""


def ctx_of(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def current_session(request: Request) -> PanelSession | None:
    ctx = ctx_of(request)
    session = await call_service(
        request, panel_sessions.find_session, ctx.db, request.cookies.get(COOKIE)
    )
    if session is not None:
        request.state.partner_id = session.partner_id  # for the access log
    return session


async def require_session(request: Request) -> PanelSession:
    session = await current_session(request)
    if session is None:
        raise LoginRequired()
    return session


def field(form: FormData, name: str) -> str | None:
    """A text field of a form (None when absent or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else None


async def read_form(request: Request) -> FormData:
    # Small urlencoded forms only: no file, a handful of fields.
    return await request.form(max_files=0, max_fields=20)


def check_same_site(request: Request) -> None:
    """Refuse a POST a browser says comes from another site."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CsrfRejected("cross-site request")
    origin = request.headers.get("origin")
    if origin is None:
        return
    parts = urlsplit(str(request.base_url))
    allowed = {own_origin(request), origin_of(f"{parts.scheme}://{parts.netloc}")}
    if origin_of(origin) not in allowed:
        raise CsrfRejected("origin not allowed")


async def checked_form(request: Request, session: PanelSession) -> FormData:
    """The form of a state-changing request, once it proved it comes from this session's
    own pages."""
    check_same_site(request)
    form = await read_form(request)
    if not session.csrf_ok(field(form, CSRF_FIELD)):
        raise CsrfRejected("missing or wrong CSRF token")
    return form


async def check_login_budget(request: Request) -> None:
    ctx = ctx_of(request)
    address = request.client.host if request.client else "unknown"
    decision = await ctx.limiter.hit(
        f"panel-login:{address}", ctx.settings.panel_login_per_ip_limit
    )
    if not decision.allowed:
        raise RateLimited(decision.retry_after)


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        secure=ctx_of(request).public_base(request).startswith("https://"),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        secure=ctx_of(request).public_base(request).startswith("https://"),
        httponly=True,
        samesite="lax",
    )
