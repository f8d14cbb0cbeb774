"""The panel as a Starlette application of its own, mounted at ``/panel`` beside the API
by :func:`pushcamp.api.app.create_app`, with error pages in HTML where the API answers
JSON."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pushcamp.api.context import AppContext
from pushcamp.api.errors import client_gone
from pushcamp.errors import (
    DependencyUnavailable,
    InvalidRequest,
    NotFound,
    PushcampError,
    RateLimited,
)
from pushcamp.logs import get_logger
from pushcamp.panel import render, routes
from pushcamp.panel.security import CsrfRejected, LoginRequired

log = get_logger("pushcamp.panel")

__all__ = ["create_panel"]


def create_panel(ctx: AppContext) -> Starlette:
    app = Starlette(
        routes=[
            Route("/", routes.home),
            Route("/login", routes.login_form, methods=["GET"]),
            Route("/login", routes.login, methods=["POST"]),
            Route("/logout", routes.logout, methods=["POST"]),
            Route("/campaigns", routes.listing),
            Route("/campaigns/{campaign_id:int}", routes.campaign),
            Route("/campaigns/{campaign_id:int}/progress", routes.progress),
            Route("/subscribers", routes.subscribers),
            Route("/settings", routes.settings),
            Route("/settings/tokens", routes.create_token, methods=["POST"]),
            Route("/settings/tokens/revoke", routes.revoke_token, methods=["POST"]),
            Route("/settings/webhooks", routes.add_webhook, methods=["POST"]),
            Route("/settings/webhooks/remove", routes.remove_webhook, methods=["POST"]),
            Mount("/static", StaticFiles(packages=[("pushcamp.panel", "static")]), name="static"),
        ],
        exception_handlers={
            PushcampError: _pushcamp_error,
            HTTPException: _http_error,
            ClientDisconnect: client_gone,
            Exception: _unexpected,
        },
    )
    app.state.ctx = ctx
    return app


async def _pushcamp_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LoginRequired):
        return RedirectResponse("/panel/login", status_code=303)
    if isinstance(exc, CsrfRejected):
        log.warning("panel_csrf_rejected", path=request.url.path, reason=str(exc))
        return render.error_page(
            403,
            "Forbidden",
            "This form has expired or did not come from this panel. "
            "Go back, reload the page and try again.",
        )
    if isinstance(exc, RateLimited):
        seconds = max(1, round(exc.retry_after))
        response = render.error_page(
            429, "Too many attempts", f"Wait {seconds} s before trying again."
        )
        response.headers["Retry-After"] = str(seconds)
        return response
    if isinstance(exc, DependencyUnavailable):
        log.warning("dependency_unavailable", path=request.url.path, error=str(exc))
        return render.error_page(
            424,
            "Database unavailable",
            "The database did not answer. Nothing was changed; try again in a moment.",
        )
    if isinstance(exc, NotFound | InvalidRequest):
        return render.error_page(404, "Not found", "There is nothing here.")
    return await _unexpected(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Method not allowed", 400: "Bad request"}
    title = titles.get(exc.status_code, "Error")
    return render.error_page(exc.status_code, title, title + ".")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled_error", path=request.url.path, exc_info=exc)
    return render.error_page(500, "Error", "Something went wrong.")
