"""Running the HTTP server (uvicorn) with pushcamp's logging, its connection limits, and
saying where it listens.

The browser-facing endpoints are open to the whole internet, so the HTTP layer must hold
against clients that send too much, too slowly or too many times (docs/security.md):

* **h11**, not httptools: h11 refuses a request whose line and headers exceed
  ``h11_max_incomplete_event_size`` (16 KiB) before buffering more, so memory stays flat
  whatever a client sends; httptools has no such cap (a 16 MB header is read whole).
* ``timeout_keep_alive``: an idle keep-alive connection is closed after a few seconds.
* :class:`GuardedH11Protocol` adds what uvicorn has no setting for: a deadline for the
  request line and headers, one for the body, and a cap on open connections enforced
  when a connection is accepted (uvicorn's ``limit_concurrency`` only answers once a
  request has been read, so idle connections over it are still held).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pushcamp import logs
from pushcamp.settings import Settings

# Request line plus all headers, in bytes (h11 counts them together).
MAX_HEADER_BYTES = 16 * 1024


def _raw_response(status: int, reason: str, extra: bytes = b"") -> bytes:
    """A whole JSON error response written straight to the socket, then closed."""
    body = json.dumps({"message": reason}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n"
    ).encode()
    return head + extra + b"\r\n" + body


_UNAVAILABLE = _raw_response(503, "Service Unavailable", b"retry-after: 1\r\n")
_HEADERS_TOO_LARGE = _raw_response(431, "Request Header Fields Too Large")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the limits it has no setting for.

    * ``header_timeout``: from the moment a connection is accepted (or its previous
      response was sent) the request line and headers must be complete within it;
    * ``body_timeout``: once the headers are in, the whole body must be within it;
    * ``max_connections``: a connection accepted while that many are open is answered
      503 at once and closed, before anything is read.

    A deadline that passes closes the connection (the application, if it was waiting for
    the body, sees the client gone). Oversized headers get 431 instead of uvicorn's 400.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: str | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.connections.discard(self)
            self._refuse(_UNAVAILABLE)
            return
        self._follow_phase()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self._phase = "closed"
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == "headers" and self._headers_too_large(data):
            self._refuse(_HEADERS_TOO_LARGE)
            return
        super().data_received(data)
        self._follow_phase()

    def _headers_too_large(self, data: bytes) -> bool:
        """Whether the request line and headers, with ``data``, exceed the cap. h11's own
        limit only counts an *incomplete* block, so a larger one arriving in one read
        would pass; this counts them however they arrive."""
        buffered = self.conn.trailing_data[0]
        if len(buffered) + len(data) <= MAX_HEADER_BYTES:
            return False
        window = bytes(buffered + data[: MAX_HEADER_BYTES + 4])[: MAX_HEADER_BYTES + 4]
        return b"\r\n\r\n" not in window and b"\n\n" not in window

    def _refuse(self, response: bytes) -> None:
        self._cancel_deadline()
        self.transport.write(response)
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_phase()

    def send_400_response(self, msg: str) -> None:
        if len(self.conn.trailing_data[0]) >= MAX_HEADER_BYTES:
            self._refuse(_HEADERS_TOO_LARGE)
            return
        super().send_400_response(msg)

    # What the client owes us now, and the deadline that goes with it.
    def _follow_phase(self) -> None:
        if self._phase == "closed" or self.transport.is_closing():
            self._cancel_deadline()
            return
        state = self.conn.their_state
        phase = "headers" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        if phase == self._phase:
            return
        self._cancel_deadline()
        self._phase = phase
        if phase is not None:
            timeout = self.header_timeout if phase == "headers" else self.body_timeout
            self._deadline = self.loop.call_later(timeout, self._deadline_passed)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def protocol_class(settings: Settings) -> type[GuardedH11Protocol]:
    """The protocol class with this server's limits."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout": settings.header_timeout_seconds,
            "body_timeout": settings.body_timeout_seconds,
            "max_connections": settings.max_connections,
        },
    )


class _Server(uvicorn.Server):
    on_listen: Callable[[str], None] | None = None

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await super().startup(sockets=sockets)
        if self.should_exit:
            return
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                if self.on_listen is not None:
                    self.on_listen(f"http://{shown}:{port}")
                print(
                    f"pushcamp listening on http://{shown}:{port}  (API docs: /docs)",
                    file=sys.stdout,
                    flush=True,
                )


def server_config(app: Any, settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(settings),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=settings.keep_alive_seconds,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def run_server(settings: Settings, host: str, port: int) -> None:
    """Serve until interrupted. Migrations run in the app's start-up."""
    from pushcamp.api import create_app

    logs.configure(settings.log_level, settings.log_json)
    app = create_app(settings)
    config = server_config(app, settings, host, port)
    print(f"pushcamp {settings.redacted_database_url()}", file=sys.stderr, flush=True)
    server = _Server(config)

    def on_listen(url: str) -> None:
        if app.state.ctx.base_url is None:
            app.state.ctx.base_url = url

    server.on_listen = on_listen
    server.run()
