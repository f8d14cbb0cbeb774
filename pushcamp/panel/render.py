"""Jinja2 set-up for the panel (autoescape on for every template) and the response
headers every page carries."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

# Scripts only from pushcamp itself (no inline script, no CDN); pygal's SVG carries its
# own <style>, hence inline styles; images from https for the notification preview.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' https: data:; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def number(value: Any) -> str:
    """``411840`` as ``411,840``; ``Decimal("1040.6000")`` as ``1,040.60``; anything else
    as text."""
    if isinstance(value, bool) or value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float | Decimal):
        return f"{value:,.2f}"  # money and other amounts: two places
    return str(value)


def percent(value: Any) -> str:
    """A rate as a percentage: ``0.3408`` (a fraction) as ``34.08%``."""
    if value is None or isinstance(value, bool):
        return "–"
    return f"{float(value) * 100:.2f}%"


def language(value: Any) -> str:
    """A campaign's language: ``all_ALL`` reads "all languages"."""
    return "all languages" if value == "all_ALL" else str(value)


def when(value: datetime | None) -> str:
    """A stored time in UTC, to the minute."""
    if value is None:
        return "–"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("pushcamp.panel", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = number
    env.filters["percent"] = percent
    env.filters["when"] = when
    env.filters["language"] = language
    return env


def page(
    template: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})


def error_page(status_code: int, title: str, message: str, **context: Any) -> HTMLResponse:
    context.setdefault("session", None)
    context.setdefault("csrf", "")
    return page(
        "error.html", status_code=status_code, title=title, message=message, nav=None, **context
    )
