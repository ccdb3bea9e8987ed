"""The one backoff formula: grows by its factor from the first wait, never past the cap."""

from __future__ import annotations

from numident.core.backoff import backoff


def test_the_wait_doubles_from_the_initial_one_up_to_the_cap() -> None:
    """Step 0 waits ``initial``; each step doubles it until ``maximum``."""
    assert [backoff(step, 1.5, 10) for step in range(5)] == [1.5, 3.0, 6.0, 10, 10]


def test_another_factor_grows_the_wait_by_that_factor() -> None:
    """factor 3: 1, 3, 9."""
    assert [backoff(step, 1, 100, 3) for step in range(3)] == [1, 3, 9]


def test_a_huge_step_is_the_cap_not_an_overflow() -> None:
    """A step far past any float power still answers ``maximum``."""
    assert backoff(10_000, 1, 3600.0, 10) == 3600.0
    assert backoff(10**9, 0.5, 60) == 60
