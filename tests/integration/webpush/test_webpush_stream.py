"""``send_many`` once its connections are pooled: first attempts are then written at once
and answered in callbacks, without a task each (``_Stream`` in ``_sender.py``). The same
promises hold there as on the task path the other sender tests mostly take (a fresh
sender has no connection yet): temporary failures retried through, the per-host bound,
and a stream stopped early leaves nothing behind."""

from __future__ import annotations

import asyncio
import gc
import random
from collections.abc import Awaitable
from functools import partial
from typing import TypeVar

from pushcamp.testing.simulator import Fault, PushServiceSimulator
from pushcamp.webpush import PushResult, Subscription, Vapid, WebPushSender
from pushcamp.webpush._sender import _Queued, _Slots

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


async def warm(sender: WebPushSender, subs: list[Subscription], per_host: int) -> None:
    """Open ``per_host`` connections (their first messages go through the task path)."""
    assert all([r.ok async for r in sender.send_many((s, b"warm", None) for s in subs[:per_host])])


def test_first_attempts_on_pooled_connections_are_retried_through(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    subs = [push_simulator.subscribe() for _ in range(300)]
    plain = [s.subscription() for s in subs]

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid, per_host=4, max_attempts=12, rng=random.Random(5)) as s:
            await warm(s, plain, 4)
            push_simulator.add_fault_rate(Fault.unavailable(retry_after=0), 0.3)
            push_simulator.add_fault_rate(Fault.server_error(502), 0.1)
            return [r async for r in s.send_many((sub, b"x", None) for sub in plain[4:])]

    results = run(main())
    assert len(results) == 296
    assert all(r.ok for r in results), [r.outcome for r in results if not r.ok]
    assert any(r.attempts > 1 for r in results)
    # Each one arrived once, after as many requests as its result says.
    by_order = sorted(results, key=lambda r: plain.index(r.subscription))
    for sub, result in zip(subs[4:], by_order, strict=True):
        assert len(push_simulator.messages(sub)) == 1
        assert push_simulator.attempts(sub) == result.attempts
    assert push_simulator.stats()["connections"] <= 4 + 4  # the pool, and its replacements


def test_the_per_host_bound_holds_on_pooled_connections(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    plain = [push_simulator.subscribe().subscription() for _ in range(80)]

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid, per_host=3, max_pending=40) as sender:
            await warm(sender, plain, 3)
            push_simulator.add_fault_rate(Fault.slow(0.01), 1.0)  # answers late: they overlap
            return [r async for r in sender.send_many((s, b"x", None) for s in plain[3:])]

    results = run(main())
    assert len(results) == 77 and all(r.ok for r in results)
    assert push_simulator.stats()["max_in_flight"] <= 3


def test_a_stream_stopped_early_leaves_the_sender_whole(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    plain = [push_simulator.subscribe().subscription() for _ in range(120)]

    slots_after: list[tuple[int, int]] = []

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid, per_host=2, max_pending=50) as sender:
            await warm(sender, plain, 2)
            push_simulator.add_fault_rate(Fault.slow(0.05), 1.0)
            seen = 0
            # Most of these wait for one of the two slots when the consumer stops.
            async for _ in sender.send_many((s, b"x", None) for s in plain[2:60]):
                seen += 1
                if seen == 3:
                    break
            # Requests abandoned on the wire are the push service's until it answers them.
            while push_simulator.stats()["in_flight"]:
                await asyncio.sleep(0.01)
            # The same sender, afterwards: every slot back, none taken twice.
            results = [r async for r in sender.send_many((s, b"y", None) for s in plain[60:])]
            slots = next(iter(sender._hosts.values())).slots
            slots_after.append((slots.free, len(slots._waiters)))
            return results

    results = run(main())
    assert len(results) == 60 and all(r.ok for r in results)
    assert slots_after == [(2, 0)]  # both slots free again, nobody left waiting


def test_slots_skip_waiters_that_gave_up() -> None:
    async def main() -> None:
        slots = _Slots(1)
        assert slots.try_take() and not slots.try_take()
        gave_up = slots.take_later()
        waiting = slots.take_later()
        gave_up.cancel()
        slots.give()  # to the first waiter still waiting
        assert waiting.done() and not waiting.cancelled()
        assert not slots.try_take()  # still held, by the waiter
        slots.give()
        late = slots.take_later()
        late.cancel()
        assert slots.try_take()  # a waiter that gave up holds nothing back
        slots.give()
        assert slots.free == 1

    run(main())


def test_a_long_queue_behind_connections_that_all_fail_is_sent_through(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    # Every answer is a reset: each slot given back finds no idle connection for the next
    # queued attempt, which gives the slot straight back in turn (a task connects). More
    # waiters than Python's recursion limit must still each get their attempt.
    plain = [push_simulator.subscribe().subscription() for _ in range(1500)]

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid, per_host=2, max_pending=3000, max_attempts=1) as s:
            await warm(s, plain, 2)
            push_simulator.add_fault_rate(Fault.connection_reset(), 1.0)
            return [r async for r in s.send_many((sub, b"x", None) for sub in plain[2:])]

    results = run(main())
    assert len(results) == 1498
    assert not any(r.ok for r in results)
    assert {r.attempts for r in results} == {1}
    assert push_simulator.stats()["requests"] >= 1498 + 2


def test_slots_hand_a_long_queue_on_without_recursing() -> None:
    slots = _Slots(1)
    assert slots.try_take()
    posted: list[int] = []

    def post(i: int) -> None:
        posted.append(i)
        slots.give()  # no connection for it: the slot goes straight back

    for i in range(5000):
        slots.queue(_Queued(partial(post, i)))
    slots.give()
    assert posted == list(range(5000))
    assert slots.free == 1 and not slots._waiters


def test_queued_attempts_leave_no_reference_cycles(
    push_simulator: PushServiceSimulator, vapid: Vapid
) -> None:
    """A queued first attempt and its callback refer to each other until it is posted:
    the cycle is broken then, so the message it holds is freed at once, not at the
    garbage collector's next full pass (which, in a long launch, comes rarely)."""
    plain = [push_simulator.subscribe().subscription() for _ in range(300)]

    async def main() -> list[PushResult]:
        async with WebPushSender(vapid, per_host=2, max_pending=300) as sender:
            await warm(sender, plain, 2)
            gc.collect()
            gc.disable()
            try:
                return [r async for r in sender.send_many((s, b"x", None) for s in plain[2:])]
            finally:
                gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept to look at
                gc.collect()
                gc.set_debug(0)
                gc.enable()

    try:
        results = run(main())
        left = [o for o in gc.garbage if isinstance(o, _Queued | Subscription)]
    finally:
        gc.garbage.clear()
    assert len(results) == 298 and all(r.ok for r in results)
    assert left == [], f"{len(left)} queued attempts or subscriptions freed only by the GC"
