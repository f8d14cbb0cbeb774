"""The browser side of the simulator, with no I/O: what Mozilla's WebSocket push protocol
(the one autopush serves and Firefox speaks) needs to remember.

A browser connects, says ``hello`` and gets a user agent id (uaid); each
``pushManager.subscribe()`` is a ``register`` of a channel, which gets an endpoint on the
simulator. A push to that endpoint is checked like any other (VAPID, headers) and then
forwarded to the browser as a ``notification``; the browser decrypts it and answers with
an ``ack`` carrying a code: 100 delivered, 101 decryption failed, 102 not delivered.

Shared between the simulator's event loop and the test's thread: every method takes the
lock and none holds it across an await.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pushcamp.testing.simulator._state import ReceivedMessage, _normalise_key

# What a browser's ack codes mean (Mozilla's push protocol).
ACK_CODES = {100: "delivered", 101: "decryption failed", 102: "not delivered"}
_MAX_PENDING = 1000  # notifications kept per offline browser
_MAX_REPORTS = 1000


@dataclass(frozen=True)
class Ack:
    """A browser's answer to one notification: ``code`` 100 delivered (the service worker
    got the decrypted push), 101 decryption failed, 102 not delivered."""

    version: str
    code: int
    received_at: float

    @property
    def meaning(self) -> str:
        return ACK_CODES.get(self.code, "unknown")

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "code": self.code, "received_at": self.received_at}


@dataclass(eq=False)
class BrowserChannel:
    """One subscription a real browser made through the simulator's WebSocket. Unlike a
    :class:`SimulatedSubscription` its private key is in the browser: the simulator cannot
    decrypt, the browser's ack says whether it could."""

    id: str  # the endpoint's last segment
    uaid: str
    channel_id: str
    endpoint: str
    application_server_key: str | None
    active: bool = True
    attempts: int = 0
    messages: list[ReceivedMessage] = field(default_factory=list, repr=False)
    versions: list[str] = field(default_factory=list, repr=False)
    acks: list[Ack] = field(default_factory=list, repr=False)


@dataclass(frozen=True)
class PageReport:
    """A JSON object a page posted to ``/browser/reports`` (the demo page does with
    ``?report=``), with when it arrived."""

    received_at: float
    data: dict[str, Any]


class BrowserRegistry:
    """Browsers (by uaid), their channels (by endpoint id), notifications waiting for a
    browser that is offline, acks, and what pages reported."""

    def __init__(self, origin_of: Any) -> None:
        self._origin_of = origin_of  # callable: the simulator's origin, known once it listens
        self._lock = threading.Lock()
        self._uaids: set[str] = set()
        self._connected: dict[str, int] = {}  # uaid -> open connections that said hello
        self._hellos = 0
        self._channels: dict[str, BrowserChannel] = {}
        self._by_channel: dict[tuple[str, str], BrowserChannel] = {}
        self._pending: dict[str, deque[dict[str, Any]]] = {}
        self._reports: list[PageReport] = []
        self._page_actions: deque[str] = deque()

    # -- the protocol ----------------------------------------------------------------
    def hello(self, uaid: object) -> str:
        """A browser said hello; its uaid is kept when the simulator knows it, otherwise a
        new one is issued (and the browser drops the registrations it had, as it does
        with a push service that lost them)."""
        with self._lock:
            if not (isinstance(uaid, str) and uaid in self._uaids):
                uaid = secrets.token_hex(16)
                self._uaids.add(uaid)
            self._connected[uaid] = self._connected.get(uaid, 0) + 1
            self._hellos += 1
            return uaid

    def disconnected(self, uaid: str) -> None:
        with self._lock:
            left = self._connected.get(uaid, 0) - 1
            if left > 0:
                self._connected[uaid] = left
            else:
                self._connected.pop(uaid, None)

    def register(self, uaid: str, channel_id: str, key: object) -> BrowserChannel:
        """A ``pushManager.subscribe()``: a new endpoint for this channel, bound to the
        VAPID ``key`` when one is given. ValueError for a key that is not a P-256 point."""
        bound = None if key is None or key == "" else _normalise_key(str(key))
        sid = secrets.token_urlsafe(16)
        channel = BrowserChannel(
            id=sid,
            uaid=uaid,
            channel_id=channel_id,
            endpoint=f"{self._origin_of()}/push/{sid}",
            application_server_key=bound,
        )
        with self._lock:
            old = self._by_channel.get((uaid, channel_id))
            if old is not None:
                old.active = False
            self._channels[sid] = channel
            self._by_channel[(uaid, channel_id)] = channel
        return channel

    def unregister(self, uaid: str, channel_id: str) -> bool:
        """``PushSubscription.unsubscribe()`` (or the user revoked the permission): later
        pushes to the endpoint get 410 Gone."""
        with self._lock:
            channel = self._by_channel.get((uaid, channel_id))
            if channel is None:
                return False
            channel.active = False
            return True

    def record_ack(self, uaid: str, channel_id: str, version: str, code: int) -> None:
        with self._lock:
            channel = self._by_channel.get((uaid, channel_id))
            if channel is not None and version in channel.versions:
                channel.acks.append(Ack(version, code, time.time()))

    def notification(
        self, channel: BrowserChannel, body: bytes, message: ReceivedMessage
    ) -> dict[str, Any]:
        """Record an accepted push and build the ``notification`` the browser gets."""
        from pushcamp.webpush._base64 import b64url_encode

        version = secrets.token_hex(16)
        with self._lock:
            channel.messages.append(message)
            channel.versions.append(version)
        return {
            "messageType": "notification",
            "channelID": channel.channel_id,
            "version": version,
            "data": b64url_encode(body),
            "headers": {"encoding": "aes128gcm"},
        }

    def hold(self, uaid: str, notification: dict[str, Any]) -> None:
        """Keep a notification for a browser that is not connected (sent at its next
        hello)."""
        with self._lock:
            queue = self._pending.setdefault(uaid, deque(maxlen=_MAX_PENDING))
            queue.append(notification)

    def take_pending(self, uaid: str) -> list[dict[str, Any]]:
        with self._lock:
            queue = self._pending.pop(uaid, None)
        return list(queue or ())

    # -- looking things up -----------------------------------------------------------
    def begin(self, sid: str) -> BrowserChannel | None:
        """A push request to ``sid``: its channel (attempt counted) or None."""
        with self._lock:
            channel = self._channels.get(sid)
            if channel is not None:
                channel.attempts += 1
            return channel

    def get(self, sid: str) -> BrowserChannel:
        with self._lock:
            found = self._channels.get(sid)
        if found is None:
            raise KeyError(f"no browser subscription {sid!r}")
        return found

    def has(self, sid: str) -> bool:
        with self._lock:
            return sid in self._channels

    def channels(self) -> list[BrowserChannel]:
        with self._lock:
            return list(self._channels.values())

    def acks(self, sid: str) -> list[Ack]:
        channel = self.get(sid)
        with self._lock:
            return list(channel.acks)

    def messages(self, sid: str) -> list[ReceivedMessage]:
        channel = self.get(sid)
        with self._lock:
            return list(channel.messages)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "connected": sum(self._connected.values()),
                "hellos": self._hellos,
                "subscriptions": len(self._channels),
                "active": sum(1 for c in self._channels.values() if c.active),
            }

    def describe(self, channel: BrowserChannel) -> dict[str, Any]:
        with self._lock:
            return {
                "endpoint": channel.endpoint,
                "application_server_key": channel.application_server_key,
                "active": channel.active,
                "connected": channel.uaid in self._connected,
                "attempts": channel.attempts,
                "received": len(channel.messages),
                "acks": [a.to_json() for a in channel.acks],
            }

    # -- pages -----------------------------------------------------------------------
    def add_report(self, data: dict[str, Any]) -> str | None:
        """Keep what a page reported; returns the next action asked of the page."""
        with self._lock:
            if len(self._reports) >= _MAX_REPORTS:
                del self._reports[: _MAX_REPORTS // 2]
            self._reports.append(PageReport(time.time(), data))
            return self._page_actions.popleft() if self._page_actions else None

    def reports(self) -> list[PageReport]:
        with self._lock:
            return list(self._reports)

    def ask_page(self, action: str) -> None:
        with self._lock:
            self._page_actions.append(action)

    def reset(self) -> None:
        with self._lock:
            self._channels.clear()
            self._by_channel.clear()
            self._pending.clear()
            self._reports.clear()
            self._page_actions.clear()
