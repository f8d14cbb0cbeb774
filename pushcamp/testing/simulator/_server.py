"""The simulator's HTTP side (aiohttp): the RFC 8030 push endpoint plus a small JSON
control API, served in a background thread, in the caller's event loop, or blocking."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import struct
import sys
import threading
import time
from types import TracebackType
from typing import Any

from aiohttp import web

from pushcamp.testing.simulator import _browser_http
from pushcamp.testing.simulator._browsers import Ack, BrowserChannel, PageReport
from pushcamp.testing.simulator._state import (
    Attempt,
    Fault,
    ReceivedMessage,
    SimulatedSubscription,
    SimulatorState,
)

_MAX_SUBSCRIPTIONS_PER_CALL = 100_000


class PushServiceSimulator:
    """A push service on 127.0.0.1 that issues subscriptions, verifies VAPID, decrypts
    and records every message, and injects faults on demand.

    Start it in a background thread (``with PushServiceSimulator() as sim:``, or
    :meth:`start`/:meth:`stop`) or in the running event loop (``async with``, or
    :meth:`start_async`/:meth:`stop_async`). ``port=0`` picks a free port; ``url`` tells
    which. ``verify_vapid``/``decrypt`` switch those checks off (benchmarks);
    ``keep_messages`` bounds what is kept per subscription; ``seed`` makes rate faults
    reproducible.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verify_vapid: bool = True,
        decrypt: bool = True,
        keep_messages: int = 10_000,
        seed: int | None = None,
    ) -> None:
        self.state = SimulatorState(
            verify_vapid=verify_vapid, decrypt=decrypt, keep_messages=keep_messages, seed=seed
        )
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self.url = ""

    # -- lifecycle -----------------------------------------------------------------
    async def start_async(self) -> PushServiceSimulator:
        """Serve from the running event loop."""
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        sock.listen(1024)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self.url = f"http://{host}:{port}"
        self.state.origin = self.url
        # A short shutdown: a test ends while a "slow" fault may still be sleeping.
        self._runner = web.AppRunner(
            _application(self.state), access_log=None, shutdown_timeout=0.2
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=1024).start()
        return self

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> PushServiceSimulator:
        return await self.start_async()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_async()

    def start(self) -> PushServiceSimulator:
        """Serve from a background thread with its own event loop; returns once it
        listens."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopped = asyncio.Event()
            try:
                await self.start_async()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            await self._stopped.wait()
            await self.stop_async()

        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="push-simulator", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stopped is None:
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> PushServiceSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the Python API (thread-safe) ----------------------------------------------
    def subscribe(self, application_server_key: str | None = None) -> SimulatedSubscription:
        """A new subscription; ``.to_json()`` is what a browser would give your back end.
        With ``application_server_key``, pushes signed by another VAPID key get 403."""
        return self.state.subscribe(application_server_key)

    def messages(self, subscription: SimulatedSubscription | str) -> list[ReceivedMessage]:
        """What arrived for this subscription, oldest first."""
        return self.state.messages(subscription)

    def attempts(self, subscription: SimulatedSubscription | str) -> int:
        """Push requests made to this subscription, faulted and refused ones included."""
        return self.state.get(subscription).attempts

    def attempt_log(self, subscription: SimulatedSubscription | str) -> list[Attempt]:
        """Each push request to this subscription, oldest first: when it arrived and the
        status it was answered (None: closed without an answer). Shows when a sender
        retried, e.g. how long after a 429 with Retry-After."""
        return self.state.attempt_log(subscription)

    def inject(
        self, subscription: SimulatedSubscription | str, fault: Fault, times: int = 1
    ) -> None:
        """Play ``fault`` on the next ``times`` requests to this subscription."""
        self.state.inject(subscription, fault, times)

    def add_fault_rate(self, fault: Fault, rate: float) -> None:
        """Play ``fault`` on a random fraction ``rate`` of all push requests."""
        self.state.add_fault_rate(fault, rate)

    def clear_faults(self) -> None:
        self.state.clear_faults()

    def unsubscribe(self, subscription: SimulatedSubscription | str) -> None:
        """The browser unsubscribed: later pushes get 410 Gone."""
        self.state.unsubscribe(subscription)

    def stats(self) -> dict[str, Any]:
        """Counters: requests, accepted, per-status counts (0: dropped), in-flight peak,
        TCP connections opened for push requests."""
        return self.state.stats()

    def reset(self) -> None:
        self.state.reset()

    # -- real browsers (Mozilla's WebSocket push protocol; docs/simulator.md) --------
    @property
    def push_server_url(self) -> str:
        """The WebSocket URL to give a browser as its push server (Firefox:
        ``dom.push.serverURL``)."""
        return "ws" + self.url.removeprefix("http") + "/"

    def gate_url(self, next_url: str) -> str:
        """A page that waits until a browser's push connection is up, then opens
        ``next_url`` (Firefox refuses ``subscribe()`` before)."""
        from urllib.parse import quote

        return f"{self.url}/browser/gate?next={quote(next_url, safe='')}"

    def browser_status(self) -> dict[str, Any]:
        """``connected`` browsers, ``hellos`` so far, ``subscriptions`` and ``active``."""
        return self.state.browsers.status()

    def browser_subscriptions(self) -> list[BrowserChannel]:
        """The subscriptions real browsers made here, oldest first."""
        return self.state.browsers.channels()

    def browser_subscription(self, endpoint_or_id: str) -> BrowserChannel:
        """One of them, by its endpoint (or the endpoint's last segment)."""
        return self.state.browsers.get(endpoint_or_id.rstrip("/").rsplit("/", 1)[-1])

    def acks(self, endpoint_or_id: str) -> list[Ack]:
        """The browser's acks for the pushes to this subscription (code 100: delivered)."""
        return self.state.browsers.acks(self.browser_subscription(endpoint_or_id).id)

    def page_reports(self) -> list[PageReport]:
        """What pages posted to ``/browser/reports`` (the demo page with ``?report=``)."""
        return self.state.browsers.reports()

    @property
    def reports_url(self) -> str:
        return f"{self.url}/browser/reports"

    def ask_page(self, action: str) -> None:
        """Queue an action for the page that reports next (the demo page understands
        ``subscribe``, ``unsubscribe`` and ``revoke``)."""
        self.state.browsers.ask_page(action)


def run(host: str = "127.0.0.1", port: int = 8090, **options: Any) -> None:
    """Serve the simulator until interrupted (Ctrl-C or SIGTERM); ``options`` are those of
    :class:`PushServiceSimulator`. Prints one line, ``pushcamp simulator listening on
    <url>``, once it accepts connections (``port=0`` picks a free one)."""
    try:  # uvloop, when installed, makes the simulator a cheaper peer in benchmarks
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run

    async def main() -> None:
        simulator = await PushServiceSimulator(host, port, **options).start_async()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        print(f"pushcamp simulator listening on {simulator.url}", flush=True)
        try:
            await stop.wait()
        finally:
            await simulator.stop_async()

    with contextlib.suppress(KeyboardInterrupt):
        runner(main())
    sys.stdout.flush()


# -- HTTP ---------------------------------------------------------------------------
def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="body is not JSON") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def _application(state: SimulatorState) -> web.Application:
    routes = web.RouteTableDef()
    sockets = _browser_http.Sockets()
    _browser_http.add_routes(routes, state, sockets)

    @routes.post("/push/{sid}")
    async def push(request: web.Request) -> web.StreamResponse:
        state.request_started(request.transport)
        arrived_at = time.time()
        status: int | None = None
        sub: SimulatedSubscription | None = None
        try:
            if state.browsers.has(request.match_info["sid"]):  # a real browser's endpoint
                status, response = await _browser_http.push(
                    request, state, sockets, request.match_info["sid"]
                )
                return response
            sub, fault, early = state.begin(request.match_info["sid"])
            if early is not None:
                status = early.status
                return web.Response(status=early.status, text=early.reason)
            assert sub is not None
            try:
                body = await request.read()
            except web.HTTPException as exc:  # a body over the server's own limit: 413
                status = exc.status
                raise
            if fault is not None:
                if fault.delay > 0:
                    await asyncio.sleep(fault.delay)
                if fault.drop:
                    # No answer at all: the client sees the connection close (reset:
                    # SO_LINGER 0 makes the close a TCP RST).
                    transport = request.transport
                    if transport is not None:
                        sock = transport.get_extra_info("socket")
                        if fault.reset and sock is not None:
                            sock.setsockopt(
                                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                            )
                        transport.abort()
                    return web.Response(status=500)
                if fault.status is not None:
                    status = fault.status
                    headers = (
                        {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
                    )
                    return web.Response(status=fault.status, text=fault.body, headers=headers)
            answer = state.accept(sub, request.headers, body)
            status = answer.status
            if answer.status == 201:
                return web.Response(
                    status=201, headers={"Location": f"{state.origin}/message/{sub.id}"}
                )
            return web.Response(status=answer.status, text=answer.reason)
        finally:
            state.request_finished(status)
            if sub is not None:
                state.log_attempt(sub, arrived_at, status)

    @routes.post("/subscriptions")
    async def create(request: web.Request) -> web.Response:
        data = await _body(request)
        key = data.get("application_server_key")
        if key is not None and not isinstance(key, str):
            return _error(400, "application_server_key must be a string")
        count = data.get("count")
        if count is not None and (
            not isinstance(count, int) or not 1 <= count <= _MAX_SUBSCRIPTIONS_PER_CALL
        ):
            return _error(400, f"count must be an integer 1..{_MAX_SUBSCRIPTIONS_PER_CALL}")
        try:  # a bad key is refused by the first subscribe(), before anything is made
            subs = [state.subscribe(key).to_json() for _ in range(count or 1)]
        except ValueError as exc:
            return _error(400, str(exc))
        if count is None:
            return _json(subs[0], 201)
        return _json({"subscriptions": subs}, 201)

    def _find(request: web.Request) -> SimulatedSubscription:
        try:
            return state.get(request.match_info["sid"])
        except KeyError as exc:
            raise web.HTTPNotFound(text="no such subscription") from exc

    @routes.get("/subscriptions/{sid}")
    async def show(request: web.Request) -> web.Response:
        sub = _find(request)
        return _json(
            {
                "subscription": sub.to_json(),
                "application_server_key": sub.application_server_key,
                "active": sub.active,
                "attempts": sub.attempts,
                "received": len(state.messages(sub)),
                "attempt_log": [a.to_json() for a in state.attempt_log(sub)],
            }
        )

    @routes.delete("/subscriptions/{sid}")
    async def unsubscribe(request: web.Request) -> web.Response:
        state.unsubscribe(_find(request))
        return web.Response(status=204)

    @routes.get("/subscriptions/{sid}/messages")
    async def messages(request: web.Request) -> web.Response:
        sub = _find(request)
        return _json({"messages": [m.to_json() for m in state.messages(sub)]})

    @routes.post("/subscriptions/{sid}/faults")
    async def inject(request: web.Request) -> web.Response:
        sub = _find(request)
        data = await _body(request)
        try:
            fault, times = Fault.from_json(data), int(data.get("times", 1))
        except (TypeError, ValueError) as exc:
            return _error(400, f"bad fault: {exc}")
        state.inject(sub, fault, times)
        return web.Response(status=204)

    @routes.post("/faults")
    async def add_rate(request: web.Request) -> web.Response:
        data = await _body(request)
        try:
            state.add_fault_rate(Fault.from_json(data), float(data.get("rate", 1.0)))
        except (TypeError, ValueError) as exc:
            return _error(400, f"bad fault: {exc}")
        return web.Response(status=204)

    @routes.delete("/faults")
    async def clear(request: web.Request) -> web.Response:
        state.clear_faults()
        return web.Response(status=204)

    @routes.get("/stats")
    async def stats(request: web.Request) -> web.Response:
        return _json(state.stats())

    @routes.post("/reset")
    async def reset(request: web.Request) -> web.Response:
        state.reset()
        return web.Response(status=204)

    app = web.Application(client_max_size=64 * 1024)
    app.add_routes(routes)

    async def close_browsers(_app: web.Application) -> None:
        await _browser_http.close_all(sockets)

    app.on_shutdown.append(close_browsers)
    return app
