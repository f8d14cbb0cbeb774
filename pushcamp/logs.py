"""Structured logs on stderr: one JSON event per line, or readable lines on a terminal.

Nothing secret is ever passed to a log call (tokens, keys, payloads); as a second line of
defence, values under names that smell of secrets are masked before rendering.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SECRET_NAMES = ("token", "authorization", "private", "secret", "password", "key")
# Names the code logs on every request: checked once, not per event.
_KNOWN_SAFE = {
    "event",
    "level",
    "timestamp",
    "logger",
    "method",
    "path",
    "status",
    "ms",
    "partner",
    "public_key",
    "database",
    "version",
    "error",
    "exc_info",
}


def _mask_secrets(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for name in event.keys() - _KNOWN_SAFE:
        if any(s in name.lower() for s in _SECRET_NAMES):
            event[name] = "***"
    return event


def wants_json(json: bool | None = None) -> bool:
    """JSON lines when asked (``PUSHCAMP_LOG_JSON=true``), readable lines when asked
    (``false``); unset: JSON unless stderr is a terminal (a person is reading)."""
    if json is not None:
        return json
    return not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())


def configure(level: str = "INFO", json: bool | None = None) -> None:
    """Route structlog and the standard library (uvicorn, alembic) to one line format:
    JSON, or structlog's readable console lines (see :func:`wants_json`)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if wants_json(json)
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "alembic"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Alembic narrates every plugin it loads at INFO; only its warnings are news.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Requests are logged by pushcamp's own access middleware, with the partner and
    # without query strings; uvicorn's access log would duplicate them.
    logging.getLogger("uvicorn.access").disabled = True


def get_logger(name: str = "pushcamp") -> Any:
    return structlog.get_logger(name)
