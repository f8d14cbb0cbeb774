"""The Web Push protocol (RFC 8030, 8291, 8292), usable on its own as a library.

    from pushcamp.webpush import PushOptions, Subscription, Vapid, WebPushSender

    vapid = Vapid(private_key, "mailto:push-ops@yourcompany.io")
    async with WebPushSender(vapid) as sender:
        async for result in sender.send_many(messages):
            ...

See ``docs/webpush.md``.
"""

from pushcamp.webpush._base64 import b64url_decode, b64url_encode
from pushcamp.webpush._crypto import MAX_MESSAGE_SIZE, MAX_PAYLOAD_SIZE, decrypt, encrypt
from pushcamp.webpush._errors import (
    DecryptionFailed,
    InvalidOptions,
    InvalidSubscription,
    InvalidVapid,
    PayloadTooLarge,
    WebPushError,
)
from pushcamp.webpush._message import PushMessage, PushOptions, PushResult
from pushcamp.webpush._outcome import (
    AuthRejected,
    Gone,
    Outcome,
    Rejected,
    RetryAfter,
    Sent,
    TooLarge,
    Transient,
    classify,
)
from pushcamp.webpush._sender import WebPushSender
from pushcamp.webpush._subscription import Subscription, origin_of
from pushcamp.webpush._vapid import (
    Vapid,
    VerifiedToken,
    check_subject,
    load_private_key,
    verify_authorization,
)

__all__ = [
    "AuthRejected",
    "b64url_decode",
    "b64url_encode",
    "MAX_MESSAGE_SIZE",
    "MAX_PAYLOAD_SIZE",
    "DecryptionFailed",
    "Gone",
    "InvalidOptions",
    "InvalidSubscription",
    "InvalidVapid",
    "Outcome",
    "PayloadTooLarge",
    "PushMessage",
    "PushOptions",
    "PushResult",
    "Rejected",
    "RetryAfter",
    "Sent",
    "Subscription",
    "TooLarge",
    "Transient",
    "Vapid",
    "VerifiedToken",
    "WebPushError",
    "WebPushSender",
    "check_subject",
    "classify",
    "decrypt",
    "encrypt",
    "load_private_key",
    "origin_of",
    "verify_authorization",
]
