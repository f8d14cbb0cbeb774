"""Errors ``pushcamp.webpush`` raises on purpose, all under :class:`WebPushError`.

The library owns this base (a plain :class:`Exception`) and imports nothing from the
application around it, so it can be used on its own; an application translates these
errors at its own boundary. A push service's *answer* is never an exception: it becomes
an :mod:`outcome <pushcamp.webpush._outcome>`.
"""

from __future__ import annotations


class WebPushError(Exception):
    """Base class of every error raised by ``pushcamp.webpush``."""


class PayloadTooLarge(WebPushError):
    """The plaintext does not fit one 4096-byte aes128gcm record (raised before sending)."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"payload is {size} bytes; a Web Push message holds at most {limit}")


class InvalidSubscription(WebPushError):
    """A subscription's endpoint or keys cannot be used (malformed URL, bad p256dh/auth)."""


class InvalidVapid(WebPushError):
    """A VAPID key or claim is unusable: bad key, placeholder contact, expiry out of range."""


class InvalidOptions(WebPushError):
    """A message option (TTL, Urgency, Topic) is outside what RFC 8030 allows."""


class DecryptionFailed(WebPushError):
    """A message body is not a valid aes128gcm message for the given keys."""
