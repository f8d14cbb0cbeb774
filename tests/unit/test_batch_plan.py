"""The batch plan's span: few batches for a small audience's few ids, about sixteen for a
mid-sized one (its workers send side by side, its progress moves), batches of at most
5,000 ids beyond, and never more than 4,000 batches."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pushcamp.store.launches import MAX_BATCHES, batch_span


def batches(ids: int) -> int:
    return -(-ids // batch_span(ids))


def test_small_audiences_keep_batches_of_500_ids() -> None:
    assert batch_span(1) == 500 and batches(1) == 1
    assert batches(3000) == 6  # the Celery tests' "6 batches of 500 ids"
    assert batches(8000) == 16


def test_a_mid_sized_audience_is_sent_in_sixteen_batches() -> None:
    assert batch_span(20_000) == 1250 and batches(20_000) == 16
    assert batches(80_000) == 16


def test_large_audiences_take_batches_of_5000_ids_up_to_the_cap() -> None:
    assert batch_span(100_000) == 5000 and batches(100_000) == 20
    assert batch_span(1_000_000) == 5000 and batches(1_000_000) == 200
    assert batch_span(100_000_000) == 25_000 and batches(100_000_000) == MAX_BATCHES


@given(st.integers(min_value=1, max_value=10**10))
def test_every_plan_is_bounded(ids: int) -> None:
    span = batch_span(ids)
    assert span >= 500
    assert batches(ids) <= MAX_BATCHES
    assert batches(ids) >= min(16, -(-ids // 500))
