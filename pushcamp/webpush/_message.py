"""A message to send, its RFC 8030 options, and the result of sending it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

from pushcamp.webpush._errors import InvalidOptions
from pushcamp.webpush._outcome import Outcome, Sent
from pushcamp.webpush._subscription import Subscription

if TYPE_CHECKING:
    from pushcamp.webpush._vapid import Vapid

Urgency = Literal["very-low", "low", "normal", "high"]
URGENCIES: tuple[str, ...] = ("very-low", "low", "normal", "high")
#: RFC 8030 section 5.4: at most 32 characters of the URL-safe base64 alphabet.
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
#: 28 days: what push services keep at most; a larger TTL is silently capped by them.
MAX_TTL = 28 * 24 * 3600
DEFAULT_TTL = 24 * 3600


@dataclass(frozen=True, slots=True)
class PushOptions:
    """RFC 8030 delivery options of a message.

    ``ttl``: seconds the push service may hold the message for an offline browser (0:
    deliver now or drop). ``urgency``: a hint that lets a phone on battery wait.
    ``topic``: a message with the same topic replaces one still waiting at the push
    service — so a message re-sent after a crash does not arrive twice. ``vapid``
    overrides the sender's default identity for this message.
    """

    ttl: int = DEFAULT_TTL
    urgency: Urgency = "normal"
    topic: str | None = None
    vapid: Vapid | None = None

    def __post_init__(self) -> None:
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int):
            raise InvalidOptions("ttl must be an integer number of seconds")
        if not 0 <= self.ttl <= MAX_TTL:
            raise InvalidOptions(f"ttl must be between 0 and {MAX_TTL} seconds")
        if self.urgency not in URGENCIES:
            raise InvalidOptions(f"urgency must be one of {', '.join(URGENCIES)}")
        if self.topic is not None and not _TOPIC.fullmatch(self.topic):
            raise InvalidOptions("topic must be 1-32 characters of A-Z a-z 0-9 - _")

    def headers(self) -> dict[str, str]:
        """The RFC 8030 request headers these options stand for."""
        headers = {
            "TTL": str(self.ttl),
            "Urgency": self.urgency,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        if self.topic is not None:
            headers["Topic"] = self.topic
        return headers


class PushMessage(NamedTuple):
    """One message of a stream: a plain ``(subscription, payload, options)`` tuple works
    too. ``subscription`` may also be ``PushSubscription.toJSON()`` as a mapping."""

    subscription: Subscription
    payload: bytes | str
    options: PushOptions | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    """What became of one message: its final :class:`Outcome` after ``attempts`` tries
    (0 when it was refused before any request), and the push service's explanation
    (``detail``, the start of the answer's body) when it failed."""

    message: PushMessage
    outcome: Outcome
    attempts: int
    detail: str = ""

    @property
    def subscription(self) -> Subscription:
        return self.message.subscription

    @property
    def ok(self) -> bool:
        """Accepted by the push service."""
        return isinstance(self.outcome, Sent)
