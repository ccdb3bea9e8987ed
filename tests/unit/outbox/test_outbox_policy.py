"""RetryPolicy: the backoff schedule and the 24-hour give-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from numident.outbox import RetryPolicy

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_delays_double_from_one_second_up_to_one_hour() -> None:
    """Without jitter the waits are 1, 2, 4, ... seconds, capped at one hour."""
    policy = RetryPolicy(jitter=0)
    waits = [policy.delay(n).total_seconds() for n in range(1, 16)]
    assert waits[:6] == [1, 2, 4, 8, 16, 32]
    assert waits[11] == 2048
    assert waits[12:] == [3600, 3600, 3600]


def test_next_attempt_is_now_plus_the_delay_for_the_attempts_made() -> None:
    """After the third failed attempt the next one is due four seconds later."""
    policy = RetryPolicy(jitter=0)
    now = T0 + timedelta(seconds=10)
    assert policy.next_attempt(T0, 3, now) == now + timedelta(seconds=4)


def test_the_last_try_is_pulled_in_to_the_deadline_and_then_it_gives_up() -> None:
    """A try that would fall past created_at + 24h happens at the deadline; after it, None."""
    policy = RetryPolicy(jitter=0)
    deadline = T0 + timedelta(hours=24)
    late = deadline - timedelta(minutes=10)
    assert policy.next_attempt(T0, 30, late) == deadline
    assert policy.next_attempt(T0, 31, deadline) is None
    assert policy.next_attempt(T0, 31, deadline + timedelta(microseconds=1)) is None
    assert policy.next_attempt(T0, 31, deadline - timedelta(microseconds=1)) == deadline


def test_retry_after_postpones_the_next_try_up_to_the_maximum_delay() -> None:
    """A receiver's Retry-After wins over a shorter backoff but never exceeds max_delay."""
    policy = RetryPolicy(jitter=0)
    assert policy.next_attempt(T0, 1, T0, retry_after=120) == T0 + timedelta(seconds=120)
    assert policy.next_attempt(T0, 1, T0, retry_after=0.5) == T0 + timedelta(seconds=1)
    assert policy.next_attempt(T0, 1, T0, retry_after=86_400) == T0 + timedelta(hours=1)


def test_a_shorter_give_up_window_is_respected() -> None:
    """give_up_after is the policy's, not a constant."""
    policy = RetryPolicy(jitter=0, give_up_after=timedelta(seconds=5))
    assert policy.next_attempt(T0, 3, T0 + timedelta(seconds=3)) == T0 + timedelta(seconds=5)
    assert policy.next_attempt(T0, 4, T0 + timedelta(seconds=5)) is None


@given(attempts=st.integers(min_value=1, max_value=10_000))
def test_jitter_stays_within_its_fraction_of_the_delay(attempts: int) -> None:
    """With jitter 0.1 every wait lies within ±10 % of the exact schedule."""
    exact = RetryPolicy(jitter=0).delay(attempts).total_seconds()
    jittered = RetryPolicy(jitter=0.1).delay(attempts).total_seconds()
    assert exact * 0.9 <= jittered <= exact * 1.1


def test_nonsensical_settings_are_refused() -> None:
    """A zero initial delay or a jitter of 100 % would make a retry storm."""
    with pytest.raises(ValueError, match="initial"):
        RetryPolicy(initial=timedelta(0))
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1)


def test_the_policy_of_a_dispatch_section_is_the_one_both_sides_use() -> None:
    """``[operator.dispatch]`` and ``[messenger.dispatch]`` configure a policy the same way."""
    from numident.config import DispatchSettings

    policy = RetryPolicy.from_settings(DispatchSettings(
        initial_backoff_seconds=2, max_backoff_seconds=600, give_up_after_hours=12))
    assert (policy.initial, policy.max_delay, policy.give_up_after) == (
        timedelta(seconds=2), timedelta(minutes=10), timedelta(hours=12))
    assert RetryPolicy.from_settings(DispatchSettings()) == RetryPolicy()
