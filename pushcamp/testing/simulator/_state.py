"""The simulator's memory and rules, with no I/O: subscriptions and their private keys,
what arrived, which faults to play, and the checks a push service makes on a request.

Shared between the server's event loop and the test's thread, so every method takes
the lock; none holds it across an await (there are none here).
"""

from __future__ import annotations

import random
import re
import secrets
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushcamp.webpush import (
    MAX_MESSAGE_SIZE,
    DecryptionFailed,
    InvalidVapid,
    Subscription,
    VerifiedToken,
    decrypt,
    verify_authorization,
)
from pushcamp.webpush._base64 import b64url_decode, b64url_encode

_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_TOKEN_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Fault:
    """What the simulator does instead of (or before) answering normally.

    ``delay``: wait this many seconds first (a slow push service). ``drop``: then close
    the connection without any answer; with ``reset`` too, close it with a TCP RST (a
    crashed peer or a middlebox) instead of an orderly FIN. ``status``: then answer this
    status (with ``retry_after`` as the Retry-After header, seconds or an HTTP date, and ``body``)
    instead of checking and accepting the message. A fault with only ``delay`` answers
    normally, late.
    """

    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    drop: bool = False
    body: str = ""
    reset: bool = False

    @classmethod
    def gone(cls) -> Fault:
        return cls(status=410, body="push subscription has unsubscribed or expired")

    @classmethod
    def not_found(cls) -> Fault:
        return cls(status=404, body="push subscription not found")

    @classmethod
    def too_large(cls) -> Fault:
        return cls(status=413, body="payload too large")

    @classmethod
    def too_many_requests(cls, retry_after: float | str | None = 1) -> Fault:
        value = None if retry_after is None else str(retry_after)
        return cls(status=429, retry_after=value, body="too many requests")

    @classmethod
    def unavailable(cls, retry_after: float | str | None = None) -> Fault:
        value = None if retry_after is None else str(retry_after)
        return cls(status=503, retry_after=value, body="service unavailable")

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status=status, body="internal error")

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls(delay=seconds)

    @classmethod
    def dropped(cls) -> Fault:
        return cls(drop=True)

    @classmethod
    def connection_reset(cls) -> Fault:
        return cls(drop=True, reset=True)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        status = data.get("status")
        retry_after = data.get("retry_after")
        return cls(
            status=None if status is None else int(status),
            retry_after=None if retry_after is None else str(retry_after),
            delay=float(data.get("delay", 0.0)),
            drop=bool(data.get("drop", False)),
            body=str(data.get("body", "")),
            reset=bool(data.get("reset", False)),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the simulator accepted. ``payload`` is the decrypted plaintext, or
    None when decryption checking is off; ``body`` and ``headers`` are the request as it
    came over the wire (so a test can check it with libraries of its own: decrypt the
    body with ``http_ece``, verify ``headers["Authorization"]`` with PyJWT)."""

    subscription_id: str
    payload: bytes | None
    size: int
    ttl: int
    urgency: str
    topic: str | None
    vapid_sub: str | None
    received_at: float
    body: bytes = field(default=b"", repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def text(self) -> str:
        """The plaintext as UTF-8 (Web Push payloads are usually JSON)."""
        if self.payload is None:
            raise ValueError("decryption checking is off: the plaintext is unknown")
        return self.payload.decode("utf-8")

    def to_json(self) -> dict[str, Any]:
        text: str | None = None
        if self.payload is not None:
            try:
                text = self.payload.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        return {
            "subscription_id": self.subscription_id,
            "payload": text,
            "payload_b64": None if self.payload is None else b64url_encode(self.payload),
            "size": self.size,
            "ttl": self.ttl,
            "urgency": self.urgency,
            "topic": self.topic,
            "vapid_sub": self.vapid_sub,
            "received_at": self.received_at,
            "body_b64": b64url_encode(self.body),
            "headers": dict(self.headers),
        }


@dataclass(frozen=True)
class Attempt:
    """One push request to a subscription: when it arrived (seconds since the epoch) and
    what it was answered (None: the connection was closed without an answer)."""

    arrived_at: float
    status: int | None

    def to_json(self) -> dict[str, Any]:
        return {"arrived_at": self.arrived_at, "status": self.status}


@dataclass(eq=False)
class SimulatedSubscription:
    """A browser's subscription as the simulator keeps it — private key included, which
    is what lets it decrypt."""

    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    auth: bytes = field(repr=False)
    application_server_key: str | None = None
    active: bool = True
    attempts: int = 0
    messages: list[ReceivedMessage] = field(default_factory=list, repr=False)
    faults: deque[Fault] = field(default_factory=deque, repr=False)
    log: list[Attempt] = field(default_factory=list, repr=False)
    p256dh: str = field(init=False)

    def __post_init__(self) -> None:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.p256dh = b64url_encode(point)

    def to_json(self) -> dict[str, Any]:
        """``PushSubscription.toJSON()``: what a browser hands to your back end."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64url_encode(self.auth)},
        }

    def subscription(self) -> Subscription:
        """The same, as a :class:`pushcamp.webpush.Subscription`."""
        return Subscription(self.endpoint, self.p256dh, b64url_encode(self.auth))


@dataclass(frozen=True)
class Answer:
    """The simulator's decision on a push request."""

    status: int
    reason: str = ""
    retry_after: str | None = None


@dataclass(frozen=True)
class Checked:
    """What a push request that passed the checks said."""

    ttl: int
    urgency: str
    topic: str | None
    vapid_sub: str | None

    def message(
        self,
        subscription_id: str,
        payload: bytes | None,
        body: bytes,
        headers: Mapping[str, str],
        now: float,
    ) -> ReceivedMessage:
        return ReceivedMessage(
            subscription_id=subscription_id,
            payload=payload,
            size=len(body),
            ttl=self.ttl,
            urgency=self.urgency,
            topic=self.topic,
            vapid_sub=self.vapid_sub,
            received_at=now,
            body=body,
            headers=dict(headers),
        )


class SimulatorState:
    """Everything the simulator knows. ``origin`` is the VAPID ``aud`` it expects."""

    def __init__(
        self,
        *,
        verify_vapid: bool = True,
        decrypt: bool = True,
        keep_messages: int = 10_000,
        seed: int | None = None,
    ) -> None:
        self.origin = ""
        self.verify_vapid = verify_vapid
        self.decrypt = decrypt
        self.keep_messages = keep_messages
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._subscriptions: dict[str, SimulatedSubscription] = {}
        self._rate_faults: list[tuple[Fault, float]] = []
        self._tokens: dict[str, VerifiedToken] = {}
        self._statuses: Counter[int] = Counter()
        self._requests = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._connections: weakref.WeakSet[object] = weakref.WeakSet()
        self._connection_count = 0
        # Real browsers subscribed over the WebSocket push protocol (_browsers.py).
        from pushcamp.testing.simulator._browsers import BrowserRegistry

        self.browsers = BrowserRegistry(lambda: self.origin)

    # -- subscriptions -------------------------------------------------------------
    def subscribe(self, application_server_key: str | None = None) -> SimulatedSubscription:
        """Issue a subscription, as a browser's ``pushManager.subscribe()`` would.

        ``application_server_key`` (base64url, an uncompressed P-256 point: the sender's
        VAPID public key) binds the subscription to that key: pushes signed by any other
        key get 403. Without it (as Mozilla's service allows) any VAPID key is accepted.
        Raises ValueError for a key that is not a P-256 point, as the browser would."""
        if application_server_key is not None:
            application_server_key = _normalise_key(application_server_key)
        sid = secrets.token_urlsafe(16)
        sub = SimulatedSubscription(
            id=sid,
            endpoint=f"{self.origin}/push/{sid}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=secrets.token_bytes(16),
            application_server_key=application_server_key,
        )
        with self._lock:
            self._subscriptions[sid] = sub
        return sub

    def get(self, subscription: SimulatedSubscription | str) -> SimulatedSubscription:
        sid = subscription if isinstance(subscription, str) else subscription.id
        with self._lock:
            found = self._subscriptions.get(sid)
        if found is None:
            raise KeyError(f"no simulated subscription {sid!r}")
        return found

    def unsubscribe(self, subscription: SimulatedSubscription | str) -> None:
        """The browser unsubscribed: every later push gets 410 Gone."""
        sub = self.get(subscription)
        with self._lock:
            sub.active = False

    def messages(self, subscription: SimulatedSubscription | str) -> list[ReceivedMessage]:
        sub = self.get(subscription)
        with self._lock:
            return list(sub.messages)

    def attempt_log(self, subscription: SimulatedSubscription | str) -> list[Attempt]:
        sub = self.get(subscription)
        with self._lock:
            return list(sub.log)

    def log_attempt(
        self, sub: SimulatedSubscription, arrived_at: float, status: int | None
    ) -> None:
        """Note one push request and its answer (the first ``keep_messages`` are kept)."""
        with self._lock:
            if len(sub.log) < self.keep_messages:
                sub.log.append(Attempt(arrived_at, status))

    # -- faults --------------------------------------------------------------------
    def inject(
        self, subscription: SimulatedSubscription | str, fault: Fault, times: int = 1
    ) -> None:
        """Play ``fault`` on the next ``times`` requests to this subscription."""
        sub = self.get(subscription)
        with self._lock:
            sub.faults.extend([fault] * times)

    def add_fault_rate(self, fault: Fault, rate: float) -> None:
        """Play ``fault`` on a random fraction ``rate`` (0..1) of all push requests."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        with self._lock:
            self._rate_faults.append((fault, rate))

    def clear_faults(self) -> None:
        with self._lock:
            self._rate_faults.clear()
            for sub in self._subscriptions.values():
                sub.faults.clear()

    def reset(self) -> None:
        """Forget subscriptions, faults and counters."""
        with self._lock:
            self._subscriptions.clear()
            self._rate_faults.clear()
            self._tokens.clear()
            self._statuses.clear()
            self._requests = self._max_in_flight = self._connection_count = 0
            self._connections = weakref.WeakSet()
        self.browsers.reset()

    # -- statistics ----------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "accepted": self._statuses.get(201, 0),
                "statuses": {str(k): v for k, v in sorted(self._statuses.items())},
                "subscriptions": len(self._subscriptions),
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "connections": self._connection_count,
            }

    def request_started(self, connection: object | None = None) -> None:
        """Count a push request; ``connection`` (its transport) counts connections, which
        shows whether a sender reuses them."""
        with self._lock:
            if connection is not None and connection not in self._connections:
                self._connections.add(connection)
                self._connection_count += 1
            self._requests += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def request_finished(self, status: int | None) -> None:
        """``status`` None: the connection was dropped without an answer."""
        with self._lock:
            self._in_flight -= 1
            self._statuses[0 if status is None else status] += 1

    # -- the push endpoint ---------------------------------------------------------
    def begin(self, sid: str) -> tuple[SimulatedSubscription | None, Fault | None, Answer | None]:
        """First step of a push request: which subscription, which fault to play, or an
        early answer (unknown: 404; unsubscribed: 410)."""
        with self._lock:
            sub = self._subscriptions.get(sid)
            if sub is None:
                return None, None, Answer(404, "no such subscription")
            sub.attempts += 1
            if not sub.active:
                return sub, None, Answer(410, "push subscription has unsubscribed")
            if sub.faults:
                return sub, sub.faults.popleft(), None
            for fault, rate in self._rate_faults:
                if self._rng.random() < rate:
                    return sub, fault, None
        return sub, None, None

    def accept(
        self,
        sub: SimulatedSubscription,
        headers: Mapping[str, str],
        body: bytes,
        now: float | None = None,
    ) -> Answer:
        """Check a push request as a push service would and, if good, record it."""
        now = time.time() if now is None else now
        checked = self.check(sub.application_server_key, headers, body, now)
        if isinstance(checked, Answer):
            return checked
        payload: bytes | None = None
        if self.decrypt:
            try:
                payload = decrypt(body, sub.private_key, sub.auth)
            except DecryptionFailed as exc:
                return Answer(400, f"decryption failed: {exc}")
        message = checked.message(sub.id, payload, body, headers, now)
        with self._lock:
            if len(sub.messages) < self.keep_messages:
                sub.messages.append(message)
        return Answer(201)

    def check(
        self, bound_key: str | None, headers: Mapping[str, str], body: bytes, now: float
    ) -> Answer | Checked:
        """The checks every push request gets (VAPID, headers, size), for a subscription
        bound to ``bound_key`` (or to none): an error answer, or what was read."""
        vapid_sub: str | None = None
        if self.verify_vapid:
            token = self._verify(headers.get("Authorization", ""), now)
            if isinstance(token, Answer):
                return token
            if bound_key is not None and not _same_key(token.public_key, bound_key):
                return Answer(403, "VAPID key is not the one the subscription was made with")
            vapid_sub = str(token.claims.get("sub"))
        ttl_text = headers.get("TTL")
        if ttl_text is None or not ttl_text.isdigit():
            return Answer(400, "TTL header missing or not a non-negative integer")
        urgency = headers.get("Urgency", "normal")
        if urgency not in _URGENCIES:
            return Answer(400, "Urgency must be very-low, low, normal or high")
        topic = headers.get("Topic")
        if topic is not None and not _TOPIC.fullmatch(topic):
            return Answer(400, "Topic must be at most 32 base64url characters")
        if headers.get("Content-Encoding", "").lower() != "aes128gcm":
            return Answer(400, "Content-Encoding must be aes128gcm")
        if len(body) > MAX_MESSAGE_SIZE:
            return Answer(413, "payload larger than 4096 bytes")
        return Checked(int(ttl_text), urgency, topic, vapid_sub)

    def _verify(self, header: str, now: float) -> VerifiedToken | Answer:
        # Senders reuse one token for hours; checking its signature once per token,
        # not per message, keeps the simulator fast enough to benchmark against.
        # Expiry is still checked on every request.
        with self._lock:
            token = self._tokens.get(header)
        if token is None:
            try:
                token = verify_authorization(header, self.origin, now=now)
            except InvalidVapid as exc:
                return Answer(401, f"VAPID: {exc}")
            with self._lock:
                if len(self._tokens) >= _TOKEN_CACHE_SIZE:
                    self._tokens.clear()
                self._tokens[header] = token
        if token.exp <= now:
            return Answer(401, "VAPID: token expired")
        return token


def _normalise_key(key: str) -> str:
    """An applicationServerKey as the simulator keeps it: base64url without padding of a
    65-byte uncompressed P-256 point; ValueError otherwise."""
    try:
        point = b64url_decode(key)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except (ValueError, TypeError) as exc:
        raise ValueError("application_server_key is not a base64url P-256 public key") from exc
    if len(point) != 65:
        raise ValueError("application_server_key must be an uncompressed P-256 point")
    return b64url_encode(point)


def _same_key(sent: str, bound: str) -> bool:
    """Whether the ``k=`` of a VAPID header is the subscription's key (same bytes)."""
    try:
        return b64url_decode(sent) == b64url_decode(bound)
    except ValueError:
        return False
