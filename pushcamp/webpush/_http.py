"""A lean HTTP/1.1 client for the one request Web Push makes: POST a small body, read a
small answer, keep the connection for the next one.

Why not aiohttp's ``ClientSession`` (still used when the caller passes one): measured
against the simulator in another process, a ``ClientSession.post`` costs about 140 µs of
CPU per request, more than the RFC 8291 encryption of the message; the same request
written as one ``bytes`` on an ``asyncio.Protocol`` with ``httptools`` (the C parser of
Node's llhttp, which uvicorn uses) parsing the answer costs about 45 µs. The figures are
in ``docs/performance.md``.

What it does, and no more: HTTP/1.1 over TCP or TLS (the default context: certificate and
host name checked), keep-alive with a pool of idle connections per origin (a connection
idle for ``idle_timeout`` or closed by the server is not reused), one total timeout per
request that covers connecting, ``Connection: close`` and bodies delimited by the
connection's end honoured, and never a redirect followed (a 3xx is returned as is). The
caller (the sender's per-origin semaphore) bounds how many requests run at once per
origin, so connections never outnumber it. No proxy, no cookies, no decompression.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import quote, urlsplit

import httptools

#: Bytes of an answer's body kept: Web Push answers are tiny; a huge one is cut, not held.
BODY_LIMIT = 64 * 1024
_SAFE = "!#$%&'()*+,/:;=?@[]~"  # RFC 3986 reserved characters, and % (already quoted)
# A path that quote(path, safe=_SAFE) would leave as it is, with no query or fragment to
# split off: push services' endpoints are such paths, so most requests skip urlsplit.
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_.\-~!$%&'()*+,/:;=@\[\]]*")


class BadResponse(OSError):
    """The push service's answer was not readable HTTP/1.1."""


class ConnectionDropped(ConnectionError):
    """The connection ended before a complete answer."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.timer: asyncio.TimerHandle | None = None  # the waiter's deadline
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.body_size = 0
        self.status = 0
        self.reusable = False
        self.idle_since = 0.0
        self.origin: _Origin | None = None  # the pool it goes back to

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports (uvicorn runs the server on uvloop) do not subclass
        # asyncio.Transport, though they have its methods: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadResponse("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(BadResponse(f"unreadable answer: {exc}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.status and not isinstance(exc, Exception):
            # A body delimited by the connection's end (no Content-Length): it is complete.
            self._complete()
        else:
            self._settle(ConnectionDropped("connection closed before an answer"))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        if self.body_size < BODY_LIMIT:
            self.body.append(body[: BODY_LIMIT - self.body_size])
        self.body_size += len(body)

    def on_message_complete(self) -> None:
        self.reusable = self.parser.should_keep_alive()
        self._complete()

    # ours
    def _complete(self) -> None:
        self._settle(Response(self.status, self.headers, b"".join(self.body)))

    def _fail(self, exc: Exception) -> None:
        self.reusable = False
        self._settle(exc)
        self.close()

    def _settle(self, outcome: Response | Exception) -> None:
        """The request's answer (or error) to its waiter, its deadline cancelled."""
        waiter, self.waiter = self.waiter, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if waiter is None or waiter.done():
            return
        if isinstance(outcome, Response):
            waiter.set_result(outcome)
        else:
            waiter.set_exception(outcome)

    def request(self, data: bytes, deadline: float) -> asyncio.Future[Response]:
        """Write a request; the future holds its answer, or TimeoutError when none is
        complete by ``deadline`` (loop time; the connection is then closed)."""
        assert self.transport is not None
        self.headers, self.body, self.body_size, self.status = {}, [], 0, 0
        self.reusable = False
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        # A timer rather than asyncio.timeout() around the await: the same total deadline
        # for a fraction of the cost per request (cancelled when the answer is settled).
        if self.timer is not None:
            self.timer.cancel()
        self.timer = loop.call_at(deadline, self._expire, waiter)
        self.transport.write(data)
        return waiter

    def _expire(self, waiter: asyncio.Future[Response]) -> None:
        if waiter is self.waiter:
            self._fail(TimeoutError())

    def usable(self) -> bool:
        return self.reusable and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.reusable = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.close()


@dataclass(slots=True)
class _Origin:
    host: str
    port: int
    tls: bool
    host_header: bytes
    idle: list[_Connection] = field(default_factory=list)


class HttpClient:
    """POSTs over pooled HTTP/1.1 connections. ``timeout``: seconds per request, connecting
    included. ``idle_timeout``: a connection idle longer is closed rather than reused (push
    services close idle connections on their side after a minute or so)."""

    def __init__(self, *, timeout: float, user_agent: str, idle_timeout: float = 30.0) -> None:
        self._timeout = timeout
        self._idle_timeout = idle_timeout
        self._user_agent = user_agent.encode("ascii")
        self._origins: dict[str, _Origin] = {}
        self._open: set[_Connection] = set()
        self._ssl: ssl.SSLContext | None = None

    def _origin(self, url: str) -> tuple[_Origin, bytes]:
        # The usual endpoint, "scheme://host[:port]/path" with a plain path: the origin by
        # its text, the path as it is. Anything else (a query, characters to quote, a new
        # origin) takes urlsplit.
        start = url.find("://")
        slash = url.find("/", start + 3) if start > 0 else -1
        if slash > 0:
            origin = self._origins.get(url[:slash])
            if origin is not None and _PLAIN_PATH.fullmatch(url, slash):
                return origin, url[slash:].encode("ascii")
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        origin = self._origins.get(key)
        if origin is None:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise BadResponse(f"not an http(s) URL: {url[:100]}")
            tls = parts.scheme == "https"
            port = parts.port or (443 if tls else 80)
            netloc = parts.netloc.rpartition("@")[2]  # never userinfo in Host
            if not netloc.isascii():
                netloc = parts.hostname.encode("idna").decode("ascii")
                netloc += f":{parts.port}" if parts.port else ""
            origin = _Origin(parts.hostname, port, tls, f"Host: {netloc}\r\n".encode("ascii"))
            self._origins[key] = origin
        if slash > 0 and url[:slash] != key and url[:slash].lower() == key.lower():
            self._origins[url[:slash]] = origin  # the same origin written with capitals
        target = quote(parts.path or "/", safe=_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=_SAFE)
        return origin, target.encode("ascii")

    def _idle(self, origin: _Origin, now: float) -> _Connection | None:
        """A pooled connection to reuse, or None; spent and stale ones are closed."""
        idle = origin.idle
        while idle:
            conn = idle.pop()
            if conn.usable() and now - conn.idle_since < self._idle_timeout:
                return conn
            conn.close()
            self._open.discard(conn)
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        _, conn = await loop.create_connection(
            _Connection,
            origin.host,
            origin.port,
            ssl=context,
            server_hostname=origin.host if context else None,
        )
        conn.origin = origin
        self._open.add(conn)
        return conn

    def start(
        self, url: str, body: bytes, head: bytes
    ) -> tuple[_Connection, asyncio.Future[Response]] | None:
        """Write the request on a pooled connection, without waiting: the connection and
        the future of its answer (hand the connection to :meth:`finish` once that is
        done). None when no idle connection is at hand (then :meth:`post` connects)."""
        origin, target = self._origin(url)
        now = asyncio.get_running_loop().time()
        conn = self._idle(origin, now)
        if conn is None:
            return None
        return conn, conn.request(self._request(origin, target, head, body), now + self._timeout)

    async def post(self, url: str, body: bytes, head: bytes) -> Response:
        """POST ``body``; ``head`` is the request's header lines other than ``Host``,
        ``User-Agent`` and ``Content-Length`` (each ending in CRLF, latin-1). The answer,
        whatever its status. Raises ``TimeoutError`` or ``OSError`` (refused, reset,
        unreadable answer)."""
        origin, target = self._origin(url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout  # one deadline: connecting included
        conn = self._idle(origin, loop.time())
        try:
            if conn is None:
                async with asyncio.timeout_at(deadline):
                    conn = await self._connect(origin)
            answer = conn.request(self._request(origin, target, head, body), deadline)
            response = await answer
        except BaseException:
            if conn is not None:  # an answer may still come: this connection is spent
                self.finish(conn, ok=False)
            raise
        self.finish(conn)
        return response

    def finish(self, conn: _Connection, ok: bool = True) -> None:
        """Back to its origin's pool once its answer is complete (``ok``) and it may be
        kept; closed otherwise."""
        if ok and conn.usable() and conn.origin is not None:
            conn.idle_since = asyncio.get_running_loop().time()
            conn.origin.idle.append(conn)
        else:
            conn.close()
            self._open.discard(conn)

    def _request(self, origin: _Origin, target: bytes, head: bytes, body: bytes) -> bytes:
        return b"".join(
            (
                b"POST ",
                target,
                b" HTTP/1.1\r\n",
                origin.host_header,
                b"User-Agent: ",
                self._user_agent,
                b"\r\n",
                head,
                b"Content-Length: %d\r\n\r\n" % len(body),
                body,
            )
        )

    async def close(self) -> None:
        for conn in self._open:
            conn.close()
        self._open.clear()
        self._origins.clear()
        await asyncio.sleep(0)  # let the transports run their close callbacks
