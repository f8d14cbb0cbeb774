"""The sender against the simulator, over real HTTP on 127.0.0.1 with real encryption:
every message arrives readable, each outcome is handled as its class says (gone and
refused ones are never retried, temporary ones are, never sooner than asked), and the
sender keeps its bounds on connections, concurrency and memory."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import http_ece
import pytest

from pushcamp.testing.simulator import Fault, PushServiceSimulator
from pushcamp.webpush import (
    MAX_PAYLOAD_SIZE,
    AuthRejected,
    Gone,
    PayloadTooLarge,
    PushMessage,
    PushOptions,
    PushResult,
    Rejected,
    RetryAfter,
    Sent,
    TooLarge,
    Transient,
    Vapid,
    WebPushSender,
)

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


class Sleeps:
    """A sleep seam: records each requested wait and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def send_all(sender: WebPushSender, messages: Any) -> list[PushResult]:
    return [result async for result in sender.send_many(messages)]


def test_every_message_arrives_decrypted_with_its_headers(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    subs = [push_simulator.subscribe() for _ in range(40)]
    options = PushOptions(ttl=3600, urgency="high", topic="launch-42")

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid) as sender:
            return await send_all(
                sender,
                [
                    (s.subscription(), json.dumps({"title": "Hi", "n": i}), options)
                    for i, s in enumerate(subs)
                ],
            )

    results = run(main())
    assert len(results) == 40
    assert all(r.outcome == Sent(201) and r.attempts == 1 for r in results)
    for i, sub in enumerate(subs):
        (message,) = push_simulator.messages(sub)
        assert json.loads(message.text) == {"title": "Hi", "n": i}
        assert (message.ttl, message.urgency, message.topic) == (3600, "high", "launch-42")
        assert message.vapid_sub == "mailto:push-ops@pushcamp.dev"


def test_what_the_sender_sends_decrypts_with_independent_http_ece(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    subs = [push_simulator.subscribe() for _ in range(5)]

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid) as sender:
            return await send_all(
                sender, [(s.subscription(), f"m{i}", None) for i, s in enumerate(subs)]
            )

    assert all(r.ok for r in run(main()))
    for i, sub in enumerate(subs):
        (message,) = push_simulator.messages(sub)
        plain = http_ece.decrypt(
            message.body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
        )
        assert plain == f"m{i}".encode()


def test_connections_are_reused(push_simulator: PushServiceSimulator, vapid: Vapid) -> None:
    subs = [push_simulator.subscribe().subscription() for _ in range(200)]

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid, per_host=4) as sender:
            return await send_all(sender, [(s, b"x", None) for s in subs])

    assert all(r.ok for r in run(main()))
    stats = push_simulator.stats()
    assert stats["accepted"] == 200
    assert 1 <= stats["connections"] <= 4


def test_concurrency_per_host_is_bounded(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    push_simulator.add_fault_rate(Fault.slow(0.02), 1.0)  # every answer late: requests overlap
    subs = [push_simulator.subscribe().subscription() for _ in range(30)]

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid, per_host=3) as sender:
            return await send_all(sender, [(s, b"x", None) for s in subs])

    assert all(r.ok for r in run(main()))
    assert push_simulator.stats()["max_in_flight"] <= 3


def test_gone_is_reported_and_never_retried(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    unsubscribed, flaky_404 = push_simulator.subscribe(), push_simulator.subscribe()
    push_simulator.unsubscribe(unsubscribed)
    push_simulator.inject(flaky_404, Fault.not_found())
    unknown = unsubscribed.subscription().to_json()
    unknown["endpoint"] = f"{push_simulator.url}/push/never-issued"

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid, sleep=Sleeps()) as sender:
            return [
                await sender.send(unsubscribed.subscription(), b"x"),
                await sender.send(flaky_404.subscription(), b"x"),
                await sender.send(unknown, b"x"),
            ]

    results = run(main())
    assert [r.outcome for r in results] == [Gone(410), Gone(404), Gone(404)]
    assert all(r.attempts == 1 for r in results)
    assert push_simulator.attempts(unsubscribed) == 1
    assert push_simulator.attempts(flaky_404) == 1


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.too_large(), TooLarge(413)),
        (Fault(status=400), Rejected(400, "HTTP 400")),
        (Fault(status=401), AuthRejected(401, "HTTP 401")),
        (Fault(status=403), AuthRejected(403, "HTTP 403")),
    ],
)
def test_too_large_and_rejected_are_never_retried(
    push_simulator: PushServiceSimulator, vapid: Vapid, fault: Fault, expected: Any
) -> None:
    sub = push_simulator.subscribe()
    push_simulator.inject(sub, fault, times=5)

    async def main() -> PushResult:
        async with WebPushSender(vapid, sleep=Sleeps()) as sender:
            return await sender.send(sub.subscription(), b"x")

    result = run(main())
    assert (result.outcome, result.attempts) == (expected, 1)
    assert push_simulator.attempts(sub) == 1
    assert push_simulator.messages(sub) == []


def test_a_vapid_key_other_than_the_subscriptions_is_rejected(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub = push_simulator.subscribe(application_server_key=vapid.public_key)
    other = Vapid.generate("mailto:push-ops@pushcamp.dev")

    async def main() -> tuple[PushResult, PushResult]:
        async with WebPushSender(other) as sender:
            wrong = await sender.send(sub.subscription(), b"x")
            right = await sender.send(sub.subscription(), b"x", PushOptions(vapid=vapid))
            return wrong, right

    wrong, right = run(main())
    assert wrong.outcome == AuthRejected(403, "HTTP 403") and "VAPID key" in wrong.detail
    assert right.outcome == Sent(201)


def test_retry_after_is_honoured_then_the_message_goes_through(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub = push_simulator.subscribe()
    push_simulator.inject(sub, Fault.too_many_requests(retry_after=2), times=1)
    push_simulator.inject(sub, Fault.unavailable(retry_after=3), times=1)
    sleeps = Sleeps()

    async def main() -> PushResult:
        async with WebPushSender(vapid, sleep=sleeps, backoff=0.1) as sender:
            return await sender.send(sub.subscription(), b"hello")

    result = run(main())
    assert (result.outcome, result.attempts) == (Sent(201), 3)
    assert len(push_simulator.messages(sub)) == 1
    # First wait after the 429, second after the 503: each at least what was asked.
    retry_waits = [s for s in sleeps.calls if s >= 1.0]
    assert 2.0 <= retry_waits[0] <= 2.1
    assert any(3.0 <= s <= 3.1 for s in sleeps.calls)


def test_retry_after_too_long_gives_up_without_waiting(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub = push_simulator.subscribe()
    push_simulator.inject(sub, Fault.too_many_requests(retry_after=3600))
    sleeps = Sleeps()

    async def main() -> PushResult:
        async with WebPushSender(vapid, sleep=sleeps, max_retry_after=60) as sender:
            return await sender.send(sub.subscription(), b"x")

    result = run(main())
    assert (result.outcome, result.attempts) == (RetryAfter(429, 3600.0), 1)
    assert sleeps.calls == []


def test_transient_failures_are_retried_up_to_the_bound(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub = push_simulator.subscribe()
    push_simulator.inject(sub, Fault.server_error(500), times=10)
    sleeps = Sleeps()

    async def main() -> PushResult:
        async with WebPushSender(vapid, sleep=sleeps, max_attempts=3, backoff=1.0) as sender:
            return await sender.send(sub.subscription(), b"x")

    result = run(main())
    assert (result.outcome, result.attempts) == (Transient(500, "HTTP 500"), 3)
    assert push_simulator.attempts(sub) == 3
    assert len(sleeps.calls) == 2
    assert 0.5 <= sleeps.calls[0] <= 1.0 and 1.0 <= sleeps.calls[1] <= 2.0  # exponential


def test_dropped_connection_is_transient_and_retried(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub = push_simulator.subscribe()
    push_simulator.inject(sub, Fault.dropped())

    async def main() -> PushResult:
        async with WebPushSender(vapid, sleep=Sleeps()) as sender:
            return await sender.send(sub.subscription(), b"x")

    result = run(main())
    assert (result.outcome, result.attempts) == (Sent(201), 2)
    assert push_simulator.stats()["statuses"].get("0") == 1  # one answerless request


def test_every_request_has_a_timeout(push_simulator: PushServiceSimulator, vapid: Vapid) -> None:
    sub = push_simulator.subscribe()
    push_simulator.inject(sub, Fault.slow(5.0))

    async def main() -> PushResult:
        async with WebPushSender(vapid, timeout=0.2, max_attempts=1) as sender:
            return await sender.send(sub.subscription(), b"x")

    result = run(main())
    assert result.outcome == Transient(None, "timeout")


def test_payload_too_large_fails_before_any_request(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub = push_simulator.subscribe()
    big = b"x" * (MAX_PAYLOAD_SIZE + 1)

    async def main() -> tuple[list[PushResult], BaseException | None]:
        async with WebPushSender(vapid) as sender:
            streamed = await send_all(sender, [(sub.subscription(), big, None)])
            try:
                await sender.send(sub.subscription(), big)
            except PayloadTooLarge as exc:
                return streamed, exc
            return streamed, None

    streamed, raised = run(main())
    assert isinstance(raised, PayloadTooLarge)
    assert streamed[0].outcome == TooLarge(None) and streamed[0].attempts == 0
    assert push_simulator.stats()["requests"] == 0


def test_a_broken_subscription_does_not_stop_the_stream(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    good = push_simulator.subscribe()
    broken = {"endpoint": good.endpoint, "keys": {"p256dh": "nope", "auth": "nope"}}

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid) as sender:
            return await send_all(
                sender,
                [PushMessage(broken, b"x"), (good.to_json(), "x", None)],  # type: ignore[arg-type]
            )

    outcomes = sorted(type(r.outcome).__name__ for r in run(main()))
    assert outcomes == ["Rejected", "Sent"]
    assert len(push_simulator.messages(good)) == 1


def test_rate_faults_are_retried_through(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    push_simulator.add_fault_rate(Fault.unavailable(retry_after=0), 0.3)
    push_simulator.add_fault_rate(Fault.server_error(502), 0.1)
    subs = [push_simulator.subscribe() for _ in range(100)]

    async def main() -> list[PushResult]:
        async with WebPushSender(
            vapid, sleep=Sleeps(), max_attempts=12, rng=random.Random(3)
        ) as sender:
            return await send_all(sender, ((s.subscription(), b"x", None) for s in subs))

    results = run(main())
    assert all(r.ok for r in results), [r.outcome for r in results if not r.ok]
    assert any(r.attempts > 1 for r in results)
    assert all(len(push_simulator.messages(s)) == 1 for s in subs)


def test_signs_one_token_per_push_service_not_per_message(
    push_simulator: PushServiceSimulator,
) -> None:
    signed: list[dict[str, Any]] = []

    class CountingVapid(Vapid):
        def sign(self, claims: Any) -> str:
            signed.append(dict(claims))
            return super().sign(claims)

    vapid = CountingVapid.generate("mailto:push-ops@pushcamp.dev")
    subs = [push_simulator.subscribe().subscription() for _ in range(50)]

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid) as sender:
            return await send_all(sender, [(s, b"x", None) for s in subs])

    assert all(r.ok for r in run(main()))
    assert [c["aud"] for c in signed] == [push_simulator.url]


def test_stream_is_consumed_lazily_within_max_pending(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    subs = [push_simulator.subscribe().subscription() for _ in range(60)]
    pulled = 0
    gaps: list[int] = []

    async def source() -> AsyncIterator[tuple[Any, bytes, None]]:
        nonlocal pulled
        for s in subs:
            pulled += 1
            yield s, b"x", None

    async def main() -> int:
        done = 0
        async with WebPushSender(vapid, max_pending=5) as sender:
            async for _ in sender.send_many(source()):
                done += 1
                gaps.append(pulled - done)
        return done

    assert run(main()) == 60
    assert max(gaps) <= 5


def test_stopping_early_cancels_the_rest_cleanly(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    push_simulator.add_fault_rate(Fault.slow(0.05), 1.0)
    subs = [push_simulator.subscribe().subscription() for _ in range(50)]

    async def main() -> int:
        async with WebPushSender(vapid, max_pending=10) as sender:
            seen = 0
            async for _ in sender.send_many([(s, b"x", None) for s in subs]):
                seen += 1
                if seen == 3:
                    break
        return seen

    assert run(main()) == 3
    assert push_simulator.stats()["requests"] < 50


def test_a_failing_source_raises_to_the_caller(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub = push_simulator.subscribe().subscription()

    def source() -> Any:
        yield sub, b"x", None
        raise RuntimeError("cursor lost")

    async def main() -> None:
        async with WebPushSender(vapid) as sender:
            await send_all(sender, source())

    with pytest.raises(RuntimeError, match="cursor lost"):
        run(main())


def test_a_malformed_item_raises_instead_of_hanging(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    sub = push_simulator.subscribe().subscription()

    async def main() -> None:
        async with WebPushSender(vapid) as sender:
            await send_all(sender, [(sub, b"x", None), (sub,)])

    with pytest.raises(TypeError):
        run(asyncio.wait_for(main(), timeout=30))
