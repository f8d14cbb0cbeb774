"""The public surface of pushcamp.webpush: what a library user may import. Changing it
is a decision, so this list changes with it, on purpose."""

from __future__ import annotations

import pushcamp.webpush

EXPECTED = {
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
    "AuthRejected",
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
    "b64url_decode",
    "b64url_encode",
    "check_subject",
    "classify",
    "decrypt",
    "encrypt",
    "load_private_key",
    "origin_of",
    "verify_authorization",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(pushcamp.webpush.__all__) == EXPECTED


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in pushcamp.webpush.__all__:
        member = getattr(pushcamp.webpush, name)
        if callable(member):
            assert member.__doc__, f"{name} has no docstring"
            assert member.__module__.startswith("pushcamp.webpush"), name


def test_no_public_module_besides_the_package() -> None:
    public = [n for n in dir(pushcamp.webpush) if not n.startswith("_")]
    assert set(public) <= EXPECTED | {"annotations"}


def test_errors_belong_to_pushcamps_one_exception_family() -> None:
    from pushcamp.errors import PushcampError

    for name in ("PayloadTooLarge", "InvalidSubscription", "InvalidVapid", "InvalidOptions"):
        assert issubclass(getattr(pushcamp.webpush, name), pushcamp.webpush.WebPushError)
    assert issubclass(pushcamp.webpush.WebPushError, PushcampError)
