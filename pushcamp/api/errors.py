"""The single place where errors become the documented HTTP bodies (contract §2)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from pushcamp.api import metrics
from pushcamp.api.body import BodyTooLarge
from pushcamp.errors import (
    DependencyUnavailable,
    FieldError,
    Forbidden,
    InvalidRequest,
    NotFound,
    PushcampError,
    RateLimited,
    Unauthorized,
)
from pushcamp.logs import get_logger
from pushcamp.webpush import WebPushError

log = get_logger("pushcamp.api")

BAD_REQUEST = {"message": "Bad Request"}
UNAUTHORIZED = {"message": "Unauthorized"}
DEPENDENCY_FAILED = {"message": "SERVICE:-"}
TOO_MANY_REQUESTS = {"message": "Too Many Requests", "status": 429}


def bad_request(errors: list[FieldError]) -> JSONResponse:
    body: dict[str, object] = dict(BAD_REQUEST)
    if errors:
        body["errors"] = [e.as_dict() for e in errors]
    return JSONResponse(body, status_code=400)


def response_for(exc: PushcampError | WebPushError) -> JSONResponse:
    if isinstance(exc, InvalidRequest):
        return bad_request(exc.errors)
    if isinstance(exc, Unauthorized):
        return JSONResponse(UNAUTHORIZED, status_code=401)
    if isinstance(exc, Forbidden):
        return JSONResponse({"message": "Forbidden"}, status_code=403)
    if isinstance(exc, RateLimited):
        # Retry-After and the rate-limit headers are added by RateLimitHeaders.
        return JSONResponse(TOO_MANY_REQUESTS, status_code=429)
    if isinstance(exc, DependencyUnavailable):
        return JSONResponse(DEPENDENCY_FAILED, status_code=424)
    if isinstance(exc, BodyTooLarge):
        return JSONResponse({"message": "Payload Too Large"}, status_code=413)
    if isinstance(exc, WebPushError):  # a payload, subscription or key the protocol refuses
        return bad_request([FieldError("body", str(exc))])
    if isinstance(exc, NotFound):
        return JSONResponse({"message": "Not Found"}, status_code=404)
    return JSONResponse({"message": "Internal Server Error"}, status_code=500)


async def _pushcamp_error(request: Request, exc: Exception) -> JSONResponse:
    # WebPushError: the protocol library's own family, translated here at the boundary.
    assert isinstance(exc, PushcampError | WebPushError)
    if isinstance(exc, DependencyUnavailable):
        metrics.DEPENDENCY_FAILURES.inc()
        log.warning("dependency_unavailable", path=request.url.path, error=str(exc))
    return response_for(exc)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own 422 would break the contract: every validation failure is a 400.
    assert isinstance(exc, RequestValidationError)
    return bad_request(
        [
            FieldError(".".join(str(p) for p in e.get("loc", ())) or "request", e.get("msg", ""))
            for e in exc.errors()
        ]
    )


_HTTP_MESSAGES = {404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = _HTTP_MESSAGES.get(exc.status_code, "Error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return JSONResponse({"message": message}, status_code=exc.status_code, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's 405 names only those of
    the first route whose path matched). Each method is tried against the routes."""
    methods = {
        method
        for method in _METHODS
        for route in request.app.router.routes
        if route.matches({**request.scope, "method": method})[0] is Match.FULL
    }
    return ", ".join(sorted(methods))


# nginx's "client closed request": recorded in the log and the metrics, never sent.
CLIENT_GONE = 499


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up before its body was read whole (or its body deadline passed):
    nobody is left to answer, and it is not a server error."""
    assert isinstance(exc, ClientDisconnect)
    log.info("client_disconnected", path=request.url.path)
    return Response(status_code=CLIENT_GONE)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled_error", path=request.url.path, exc_info=exc)
    return JSONResponse({"message": "Internal Server Error"}, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(PushcampError, _pushcamp_error)
    app.add_exception_handler(WebPushError, _pushcamp_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, client_gone)
    app.add_exception_handler(Exception, _unexpected)
