"""The simulator's browser side over the network (aiohttp, like the rest of it).

* ``GET /`` with a WebSocket upgrade (subprotocol ``push-notification``): Mozilla's push
  protocol, the one Firefox speaks to the server its ``dom.push.serverURL`` names;
* ``POST /push/{id}`` to a browser's endpoint: checked like any push, then forwarded to
  the browser as a ``notification`` (held while the browser is offline);
* ``GET /browser/gate?next=URL``: a page that waits until a browser has said hello, then
  goes to ``next`` (Firefox refuses ``subscribe()`` until its push connection is up);
* ``POST /browser/reports``: pages post what they see (the demo page with ``?report=``),
  the answer may carry an action asked of the page (``sim.ask_page``);
* ``GET /browser/status``, ``GET /browser/subscriptions``, ``GET /browser/reports``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from pushcamp.testing.simulator._browsers import BrowserChannel
from pushcamp.testing.simulator._state import Answer, SimulatorState

SUBPROTOCOL = "push-notification"
_MAX_REPORT_BYTES = 64 * 1024
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
}


class Sockets:
    """The open WebSocket of each connected browser (uaid -> socket); event loop only."""

    def __init__(self) -> None:
        self.by_uaid: dict[str, web.WebSocketResponse] = {}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data), content_type="application/json", headers=headers
    )


async def _send(ws: web.WebSocketResponse, message: dict[str, Any]) -> bool:
    try:
        await ws.send_str(json.dumps(message))
    except (ConnectionError, RuntimeError):
        return False
    return True


async def websocket(
    request: web.Request, state: SimulatorState, sockets: Sockets
) -> web.StreamResponse:
    """One browser's push connection, for as long as it stays open."""
    ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), autoping=True)
    await ws.prepare(request)
    uaid: str | None = None
    browsers = state.browsers
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            kind = data.get("messageType")
            if kind is None:  # "{}": a ping
                await ws.send_str("{}")
            elif kind == "hello":
                if uaid is not None:
                    continue  # one hello per connection
                uaid = browsers.hello(data.get("uaid"))
                previous = sockets.by_uaid.get(uaid)
                sockets.by_uaid[uaid] = ws
                if previous is not None and previous is not ws:
                    await previous.close()
                await _send(
                    ws, {"messageType": "hello", "uaid": uaid, "status": 200, "use_webpush": True}
                )
                for pending in browsers.take_pending(uaid):
                    await _send(ws, pending)
            elif uaid is None:
                await ws.close(code=4000, message=b"hello first")
            elif kind == "register":
                await _register(ws, browsers, uaid, data)
            elif kind == "unregister":
                channel_id = str(data.get("channelID", ""))
                browsers.unregister(uaid, channel_id)
                await _send(
                    ws, {"messageType": "unregister", "channelID": channel_id, "status": 200}
                )
            elif kind == "ack":
                for update in data.get("updates") or []:
                    if isinstance(update, dict):
                        browsers.record_ack(
                            uaid,
                            str(update.get("channelID", "")),
                            str(update.get("version", "")),
                            _code(update.get("code"), 100),
                        )
            elif kind == "nack":
                for channel in browsers.channels():
                    if channel.uaid == uaid and str(data.get("version")) in channel.versions:
                        browsers.record_ack(
                            uaid,
                            channel.channel_id,
                            str(data["version"]),
                            _code(data.get("code"), 0),
                        )
            # broadcast_subscribe and anything newer: nothing to do here.
    finally:
        if uaid is not None:
            browsers.disconnected(uaid)
            if sockets.by_uaid.get(uaid) is ws:
                del sockets.by_uaid[uaid]
    return ws


def _code(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


async def _register(
    ws: web.WebSocketResponse, browsers: Any, uaid: str, data: dict[str, Any]
) -> None:
    channel_id = data.get("channelID")
    if not isinstance(channel_id, str) or not channel_id:
        await _send(ws, {"messageType": "register", "status": 400, "error": "no channelID"})
        return
    try:
        channel: BrowserChannel = browsers.register(uaid, channel_id, data.get("key"))
    except ValueError as exc:
        await _send(
            ws,
            {"messageType": "register", "channelID": channel_id, "status": 400, "error": str(exc)},
        )
        return
    await _send(
        ws,
        {
            "messageType": "register",
            "channelID": channel_id,
            "status": 200,
            "pushEndpoint": channel.endpoint,
        },
    )


async def push(
    request: web.Request, state: SimulatorState, sockets: Sockets, sid: str
) -> tuple[int, web.Response]:
    """A push to a browser's endpoint: (status, response)."""
    channel = state.browsers.begin(sid)
    if channel is None:
        return 404, web.Response(status=404, text="no such subscription")
    if not channel.active:
        return 410, web.Response(status=410, text="push subscription has unsubscribed")
    body = await request.read()
    now = time.time()
    checked = state.check(channel.application_server_key, request.headers, body, now)
    if isinstance(checked, Answer):
        return checked.status, web.Response(status=checked.status, text=checked.reason)
    message = checked.message(channel.id, None, body, request.headers, now)
    notification = state.browsers.notification(channel, body, message)
    ws = sockets.by_uaid.get(channel.uaid)
    delivered = ws is not None and not ws.closed and await _send(ws, notification)
    if not delivered and checked.ttl > 0:  # offline: sent at the browser's next hello
        state.browsers.hold(channel.uaid, notification)
    location = f"{state.origin}/message/{notification['version']}"
    return 201, web.Response(status=201, headers={"Location": location})


_GATE = """<!doctype html>
<meta charset="utf-8"><title>waiting for the push connection</title>
<p>Waiting for this browser's push connection to the simulator&hellip;</p>
<script>
  (function poll() {
    fetch("/browser/status", {cache: "no-store"}).then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.connected > 0) location.replace(NEXT);
        else setTimeout(poll, 200);
      }, function () { setTimeout(poll, 500); });
  })();
</script>
"""


def add_routes(routes: web.RouteTableDef, state: SimulatorState, sockets: Sockets) -> None:
    browsers = state.browsers

    @routes.get("/")
    async def root(request: web.Request) -> web.StreamResponse:
        probe = web.WebSocketResponse(protocols=(SUBPROTOCOL,))
        if probe.can_prepare(request).ok:
            return await websocket(request, state, sockets)
        return web.Response(
            text="pushcamp push-service simulator: POST /push/{id}; WebSocket push protocol "
            "for browsers here (docs/simulator.md)\n"
        )

    @routes.get("/browser/gate")
    async def gate(request: web.Request) -> web.Response:
        target = request.query.get("next", "")
        if urlsplit(target).scheme not in ("http", "https"):
            return web.Response(status=400, text="next must be an http(s) URL")
        # json.dumps makes a JS string literal; </ cannot close the script element.
        literal = json.dumps(target).replace("</", "<\\/")
        return web.Response(text=_GATE.replace("NEXT", literal), content_type="text/html")

    @routes.get("/browser/status")
    async def status(request: web.Request) -> web.Response:
        return _json(browsers.status(), headers={"Cache-Control": "no-store"})

    @routes.get("/browser/subscriptions")
    async def subscriptions(request: web.Request) -> web.Response:
        return _json({"subscriptions": [browsers.describe(c) for c in browsers.channels()]})

    @routes.options("/browser/reports")
    async def preflight(request: web.Request) -> web.Response:
        return web.Response(status=204, headers=_CORS)

    @routes.post("/browser/reports")
    async def report(request: web.Request) -> web.Response:
        raw = await request.content.read(_MAX_REPORT_BYTES + 1)
        if len(raw) > _MAX_REPORT_BYTES:
            return _json({"error": "report too large"}, 413, _CORS)
        try:
            data = json.loads(raw)
        except ValueError:
            return _json({"error": "body is not JSON"}, 400, _CORS)
        if not isinstance(data, dict):
            return _json({"error": "body must be a JSON object"}, 400, _CORS)
        return _json({"action": browsers.add_report(data)}, 200, _CORS)

    @routes.get("/browser/reports")
    async def reports(request: web.Request) -> web.Response:
        return _json(
            {"reports": [{"received_at": r.received_at, **r.data} for r in browsers.reports()]}
        )


async def close_all(sockets: Sockets) -> None:
    """Close every browser connection (the simulator is stopping)."""
    for ws in list(sockets.by_uaid.values()):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 1.0)
