"""Rate limits count over a rolling 60 s window (GCRA), never per clock minute."""

from pushcamp.api.ratelimit import MemoryRateLimiter, headers
from pushcamp.domain.ratelimit import gcra


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_of_limit_then_refusal_with_retry_after() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    decisions = [limiter.take("p:create", 30) for _ in range(31)]
    assert all(d.allowed for d in decisions[:30])
    assert [d.remaining for d in decisions[:3]] == [29, 28, 27]
    assert decisions[29].remaining == 0
    refused = decisions[30]
    assert not refused.allowed
    assert 1.9 < refused.retry_after <= 2.0  # one slot frees every 60/30 s


def test_budget_refills_gradually_not_at_minute_boundary() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    for _ in range(30):
        assert limiter.take("k", 30).allowed
    clock.now += 2.0
    assert limiter.take("k", 30).allowed  # exactly one slot back after 2 s
    assert not limiter.take("k", 30).allowed
    clock.now += 60.0
    assert limiter.take("k", 30).remaining == 29  # whole again after a full window


def test_no_double_burst_around_a_boundary() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    allowed = 0
    for _ in range(200):  # 200 requests within 10 s: a fixed-minute counter could allow 60
        allowed += limiter.take("k", 30).allowed
        clock.now += 0.05
    # The burst, plus one per 2 s of the 9.95 s elapsed (at 2, 4, 6 and 8 s).
    assert allowed == 30 + 4


def test_keys_are_independent() -> None:
    limiter = MemoryRateLimiter(Clock())
    for _ in range(30):
        limiter.take("a:create", 30)
    assert not limiter.take("a:create", 30).allowed
    assert limiter.take("a:delete", 30).allowed
    assert limiter.take("b:create", 30).allowed


def test_refused_request_does_not_consume() -> None:
    decision, tat = gcra(2000.0, 1000.0, 30, 60.0)  # TAT far ahead: refused
    assert not decision.allowed and tat == 2000.0


def test_idle_keys_are_pruned() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    for i in range(100):
        limiter.take(f"k{i}", 30)
    clock.now += 120
    limiter.take("fresh", 30)
    assert set(limiter._tats) == {"fresh"}


def test_headers_include_both_forms_and_retry_after_when_refused() -> None:
    limiter = MemoryRateLimiter(Clock())
    limiter.take("k", 1)
    refused = dict(headers("create", limiter.take("k", 1)))
    assert refused[b"x-ratelimit-limit"] == b"1"
    assert refused[b"x-ratelimit-remaining"] == b"0"
    assert refused[b"retry-after"] == b"60"
    assert refused[b"ratelimit-policy"] == b'"create";q=1;w=60'
    assert refused[b"ratelimit"].startswith(b'"create";r=0;t=')
