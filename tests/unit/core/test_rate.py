"""The token bucket that bounds an organizer's identification items per second, on a fake clock."""

from __future__ import annotations

import pytest

from numident.core.rate import TokenBucket


def test_a_full_bucket_admits_its_rate_then_refuses_with_the_wait() -> None:
    """At 10 items/s, ten items pass at once; the eleventh waits a tenth of a second."""
    bucket = TokenBucket.full(10, now=0.0)
    assert [bucket.take(1, now=0.0) for _ in range(10)] == [0.0] * 10
    assert bucket.take(1, now=0.0) == pytest.approx(0.1)


def test_tokens_come_back_at_the_rate() -> None:
    """After 0.3 s at 10/s, exactly three more items pass."""
    bucket = TokenBucket.full(10, now=0.0)
    assert bucket.take(10, now=0.0) == 0.0
    assert [bucket.take(1, now=0.3) for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert bucket.take(1, now=0.3) > 0.0


def test_refill_over_many_small_steps_is_not_lost_to_rounding() -> None:
    """Ten steps of 0.1 s at 1/s give back the one token a full second gives."""
    bucket = TokenBucket.full(1, now=0.0)
    assert bucket.take(1, now=0.0) == 0.0
    for step in range(1, 11):
        now = step * 0.1
        if step < 10:
            assert bucket.take(1, now=now) > 0.0
    assert bucket.take(1, now=now) == 0.0


def test_the_bucket_never_holds_more_than_its_capacity() -> None:
    """An hour idle still allows only one second's worth of items at once."""
    bucket = TokenBucket.full(5, now=0.0)
    assert bucket.take(5, now=3600.0) == 0.0
    assert bucket.take(1, now=3600.0) == pytest.approx(0.2)


def test_a_refused_request_takes_nothing() -> None:
    """Refusals do not drain the bucket: the wait they report stays the same."""
    bucket = TokenBucket.full(4, now=0.0)
    assert bucket.take(3, now=0.0) == 0.0
    first = bucket.take(2, now=0.0)
    assert bucket.take(2, now=0.0) == first == pytest.approx(0.25)
    assert bucket.take(1, now=0.0) == 0.0


def test_a_batch_larger_than_the_bucket_passes_from_a_full_bucket_and_leaves_a_debt() -> None:
    """1000 items at 100/s pass from a full bucket; the next item waits until the debt is paid."""
    bucket = TokenBucket.full(100, now=0.0)
    assert bucket.take(1000, now=0.0) == 0.0
    assert bucket.take(1, now=0.0) == pytest.approx(9.01)
    assert bucket.take(1, now=9.0) > 0.0
    assert bucket.take(1, now=9.02) == 0.0


def test_a_large_batch_waits_for_a_full_bucket() -> None:
    """A batch over the capacity is refused until the bucket has refilled entirely."""
    bucket = TokenBucket.full(100, now=0.0)
    assert bucket.take(50, now=0.0) == 0.0
    assert bucket.take(500, now=0.0) == pytest.approx(0.5)
    assert bucket.take(500, now=0.5) == 0.0


def test_a_clock_stepping_back_refills_nothing() -> None:
    """Time going backwards neither adds tokens nor makes the wait negative."""
    bucket = TokenBucket.full(10, now=100.0)
    assert bucket.take(10, now=100.0) == 0.0
    assert bucket.take(1, now=50.0) == pytest.approx(0.1)
    assert bucket.take(1, now=100.1) == 0.0


def test_a_rate_must_be_positive() -> None:
    """A zero rate is refused when the bucket is made, not found at the first request."""
    with pytest.raises(ValueError, match="positive"):
        TokenBucket.full(0, now=0.0)
