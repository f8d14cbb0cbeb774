"""The panel's pages (contract §5): sign-in, the Web Push listing, a campaign, the
subscribers, the settings. Each route reads the session, calls services, and renders.
No SQL here: every number comes from the service layer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from pushcamp.api.context import call_service
from pushcamp.errors import CampaignNotFound, InvalidRequest, NotFound, Unauthorized
from pushcamp.logs import get_logger
from pushcamp.panel import charts, render
from pushcamp.panel.security import (
    CSRF_FIELD,
    check_login_budget,
    check_same_site,
    checked_form,
    clear_session_cookie,
    ctx_of,
    current_session,
    field,
    read_form,
    require_session,
    set_session_cookie,
)
from pushcamp.services import panel_reads, panel_sessions, tokens, webhooks
from pushcamp.services.panel_sessions import PanelSession

log = get_logger("pushcamp.panel")

LISTING = "/panel/campaigns"
LOGIN = "/panel/login"


def _page(
    template: str,
    session: PanelSession | None,
    nav: str | None,
    status_code: int = 200,
    **ctx: Any,
) -> Response:
    return render.page(
        template,
        status_code=status_code,
        session=session,
        csrf=session.csrf_token if session else "",
        csrf_field=CSRF_FIELD,
        nav=nav,
        **ctx,
    )


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def home(request: Request) -> Response:
    session = await current_session(request)
    return _see_other(LISTING if session else LOGIN)


async def login_form(request: Request) -> Response:
    if await current_session(request) is not None:
        return _see_other(LISTING)
    return _page("login.html", None, None, error=None)


async def login(request: Request) -> Response:
    """Sign in with an API token (form field ``token``): a session cookie and a redirect
    to the listing. The token goes nowhere else: not in a URL, a log, or the database."""
    check_same_site(request)
    await check_login_budget(request)
    form = await read_form(request)
    token = field(form, "token") or ""
    ctx = ctx_of(request)
    try:
        session_id, session = await call_service(
            request, panel_sessions.open_session, ctx.db, token
        )
    except Unauthorized:
        log.info("panel_login_refused")
        return _page("login.html", None, None, status_code=401, error="Unknown or revoked token.")
    request.state.partner_id = session.partner_id
    log.info("panel_login", partner=session.partner_id)
    response = _see_other(LISTING)
    set_session_cookie(request, response, session_id)
    return response


async def logout(request: Request) -> Response:
    session = await require_session(request)
    await checked_form(request, session)
    ctx = ctx_of(request)
    await call_service(
        request, panel_sessions.close_session, ctx.db, request.cookies.get("pushcamp_session")
    )
    response = _see_other(LOGIN)
    clear_session_cookie(request, response)
    return response


def _int_param(request: Request, name: str, default: int = 1) -> int:
    raw = request.query_params.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else default


async def listing(request: Request) -> Response:
    session = await require_session(request)
    ctx = ctx_of(request)
    result = await call_service(
        request,
        panel_reads.campaign_listing,
        ctx.db,
        session.partner_id,
        panel_reads.clean_search(request.query_params.get("q")),
        _int_param(request, "page"),
    )
    return _page("listing.html", session, "campaigns", listing=result)


def _campaign_id(request: Request) -> int:
    value: int = request.path_params["campaign_id"]
    if value > 2**62:
        raise CampaignNotFound()
    return value


async def campaign(request: Request) -> Response:
    session = await require_session(request)
    ctx = ctx_of(request)
    found = await call_service(
        request, panel_reads.campaign_page, ctx.db, session.partner_id, _campaign_id(request)
    )
    chart = None
    per = "minute"
    report = found.report
    if report is not None and report.timeline:
        per = "hour" if report.timeline_step >= timedelta(hours=1) else "minute"
        points = [(p.at, p.sent, p.delivered, p.clicked) for p in report.timeline]
        chart = (
            charts.delivery_chart(points, per),
            charts.delivery_chart(points, per, narrow=True),
        )
    return _page("campaign.html", session, "campaigns", c=found, chart=chart, per=per)


async def progress(request: Request) -> Response:
    """The numbers of the moment, for the campaign page's live progress (same origin,
    session-authenticated)."""
    session = await require_session(request)
    ctx = ctx_of(request)
    found = await call_service(
        request, panel_reads.campaign_progress, ctx.db, session.partner_id, _campaign_id(request)
    )
    return JSONResponse(found.as_dict(), headers={"Cache-Control": "no-store"})


async def subscribers(request: Request) -> Response:
    session = await require_session(request)
    ctx = ctx_of(request)
    found = await call_service(
        request, panel_reads.subscriber_breakdown, ctx.db, session.partner_id
    )
    points = [(p.day, p.new, p.total) for p in found.growth]
    return _page(
        "subscribers.html",
        session,
        "subscribers",
        s=found,
        chart=(charts.growth_chart(points), charts.growth_chart(points, narrow=True)),
        new_chart=(
            charts.new_per_day_chart(points),
            charts.new_per_day_chart(points, narrow=True),
        ),
    )


async def _settings_page(
    request: Request,
    session: PanelSession,
    *,
    new_token: str | None = None,
    new_webhook: tuple[int, str] | None = None,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    ctx = ctx_of(request)
    view = await call_service(request, panel_reads.settings_view, ctx.db, session.partner_id)
    hooks = await call_service(request, webhooks.list_webhooks, ctx.db, session.partner_id)
    dead = await call_service(request, webhooks.dead_letters, ctx.db, session.partner_id, 20)
    base = ctx.public_base(request)
    return _page(
        "settings.html",
        session,
        "settings",
        status_code=status_code,
        view=view,
        base=base,
        public_limit=ctx.settings.public_per_ip_limit,
        new_token=new_token,
        notice=notice,
        error=error,
        webhooks=hooks,
        dead_letters=dead,
        new_webhook=new_webhook,
    )


async def settings(request: Request) -> Response:
    session = await require_session(request)
    return await _settings_page(request, session)


async def create_token(request: Request) -> Response:
    """A new token, shown once in this response's page (never in a URL or a redirect)."""
    session = await require_session(request)
    await checked_form(request, session)
    ctx = ctx_of(request)
    token = await call_service(request, tokens.create_token, ctx.db, session.partner_id)
    log.info("panel_token_created", partner=session.partner_id, prefix=token[:11])
    return await _settings_page(request, session, new_token=token)


async def add_webhook(request: Request) -> Response:
    """Register a webhook; its signing secret is shown once, in this response's page. A
    URL pushcamp must not post to: 400 with the reason."""
    session = await require_session(request)
    form = await checked_form(request, session)
    url = (field(form, "url") or "")[:4096]
    ctx = ctx_of(request)
    allowed = ctx.settings.allowed_webhook_hosts
    try:
        created = await call_service(
            request, webhooks.add_webhook, ctx.db, session.partner_id, url, allowed
        )
    except InvalidRequest as exc:
        return await _settings_page(request, session, error=f"Webhook {exc}", status_code=400)
    log.info("panel_webhook_added", partner=session.partner_id, webhook_id=created[0])
    return await _settings_page(request, session, new_webhook=created)


async def remove_webhook(request: Request) -> Response:
    session = await require_session(request)
    form = await checked_form(request, session)
    raw = (field(form, "webhook_id") or "").strip()
    ctx = ctx_of(request)
    try:
        webhook_id = int(raw) if raw.isdigit() and len(raw) < 19 else 0
        await call_service(request, webhooks.remove_webhook, ctx.db, session.partner_id, webhook_id)
    except NotFound:
        return await _settings_page(request, session, error="No such webhook.", status_code=404)
    return await _settings_page(request, session, notice=f"Webhook {webhook_id} removed.")


async def revoke_token(request: Request) -> Response:
    session = await require_session(request)
    form = await checked_form(request, session)
    prefix = (field(form, "prefix") or "").strip()
    ctx = ctx_of(request)
    try:
        await call_service(
            request, tokens.revoke_partner_token, ctx.db, session.partner_id, prefix[:64]
        )
    except NotFound:
        return await _settings_page(request, session, error="No such live token.", status_code=404)
    log.info("panel_token_revoked", partner=session.partner_id, prefix=prefix[:11])
    # Revoking the token this session was opened with ends the session too.
    if await current_session(request) is None:
        response = _see_other(LOGIN)
        clear_session_cookie(request, response)
        return response
    return await _settings_page(request, session, notice=f"Token {prefix[:11]} revoked.")
