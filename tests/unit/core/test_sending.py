"""The pure rules of the send budgets and the range circuit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from numident.core.sending import budget_wait, circuit_wait

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def test_a_budget_admits_until_its_limit_and_then_waits_for_the_oldest_to_age_out() -> None:
    """Three per hour: with two in the window one more fits; with three the wait is until
    the oldest leaves the window; sends older than the window do not count."""
    assert budget_wait([ago(50), ago(10)], 3, HOUR, NOW) is None
    assert budget_wait([ago(10), ago(50), ago(30)], 3, HOUR, NOW) == 10 * 60
    assert budget_wait([ago(70), ago(50), ago(30)], 3, HOUR, NOW) is None
    # Over the limit (four of three): both sends of 59 and 50 minutes ago must age out.
    assert budget_wait([ago(59), ago(50), ago(30), ago(5)], 3, HOUR, NOW) == 10 * 60


def test_a_zero_budget_refuses_everything_for_a_whole_window() -> None:
    assert budget_wait([], 0, HOUR, NOW) == 3600


def test_the_circuit_opens_when_a_range_sends_many_codes_and_few_are_confirmed() -> None:
    """Ten sends, one confirmed (10 % < 20 %): open until enough of the unconfirmed ones
    age out; two confirmed (20 %) keeps it closed; below min_sends it never opens."""
    sends = [(ago(55 - i), i == 9) for i in range(10)]
    wait = circuit_wait(sends, 10, 0.2, HOUR, NOW)
    # Once the oldest leaves, 9 sends remain: fewer than min_sends.
    assert wait == 5 * 60
    assert circuit_wait([(at, i >= 8) for i, (at, _) in enumerate(sends)], 10, 0.2, HOUR,
                        NOW) is None
    assert circuit_wait(sends[:9], 10, 0.2, HOUR, NOW) is None


def test_an_open_circuit_waits_until_the_ratio_would_recover() -> None:
    """Twenty unconfirmed then three confirmed, min 5 sends at 50 %: it closes only when the
    window holds no more than three unconfirmed next to the three confirmed."""
    sends = [(ago(59 - i), False) for i in range(20)] + [(ago(5 - i), True) for i in range(3)]
    # The 17th unconfirmed (sent 43 minutes ago) leaves the window in 17 minutes.
    assert circuit_wait(sends, 5, 0.5, HOUR, NOW) == 17 * 60
