"""The browser side served by pushcamp (§3): the SDK script, the service worker, and a demo
page that uses them exactly as a partner's site would."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from pushcamp.api.context import context
from pushcamp.api.routes.public import load_site

router = APIRouter(tags=["sdk"], include_in_schema=False)

JAVASCRIPT = "text/javascript; charset=utf-8"
# Scripts change only with a pushcamp release: an hour of caching, then a cheap 304.
STATIC_CACHE = "public, max-age=3600"


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    etag: str


@cache
def static_file(name: str) -> StaticFile:
    body = (resources.files("pushcamp.sdk") / "static" / name).read_bytes()
    return StaticFile(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _script(request: Request, name: str) -> Response:
    file = static_file(name)
    headers = {
        "ETag": file.etag,
        "Cache-Control": STATIC_CACHE,
        # Public code: readable from any site (a <script crossorigin> with SRI, or a page
        # isolated with COEP), and never sniffed as anything but JavaScript.
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if _matches(request.headers.get("if-none-match", ""), file.etag):
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=JAVASCRIPT, headers=headers)


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags


@router.api_route("/sdk/pushcamp.js", methods=["GET", "HEAD"])
async def sdk_script(request: Request) -> Response:
    return _script(request, "pushcamp.js")


@router.api_route("/sdk/pushcamp-sw.js", methods=["GET", "HEAD"])
async def worker_for_import(request: Request) -> Response:
    """The worker, for ``importScripts()`` from a site's own service worker."""
    return _script(request, "pushcamp-sw.js")


@router.api_route("/pushcamp-sw.js", methods=["GET", "HEAD"])
async def worker(request: Request) -> Response:
    """The same worker at the root of pushcamp's origin: the demo page registers it, and
    sites download it from here."""
    return _script(request, "pushcamp-sw.js")


@cache
def templates() -> Environment:
    return Environment(
        loader=PackageLoader("pushcamp.sdk", "templates"),
        autoescape=select_autoescape(["html"]),
    )


@router.get("/demo/{partner_id}", response_class=HTMLResponse)
async def demo(request: Request, partner_id: str) -> HTMLResponse:
    """A page that subscribes to the partner's notifications through the SDK."""
    if await load_site(request, partner_id) is None:
        page = templates().get_template("not_found.html").render(partner_id=partner_id)
        return HTMLResponse(page, status_code=404)
    # The address the SDK is loaded from, as a partner's site would write it.
    base = context(request).public_base(request)
    page = templates().get_template("demo.html").render(partner_id=partner_id, base=base)
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
