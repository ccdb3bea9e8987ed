"""SPEC rule 6: a code confirmed on another number withdraws its usage on the old one."""

from __future__ import annotations

from numident.core.usages import ActiveUsage, after_confirmation


def test_a_code_confirmed_on_its_own_number_is_refreshed() -> None:
    """Nothing is withdrawn; the usage is recorded again (and keeps its since)."""
    decision = after_confirmation([ActiveUsage(1, "user-1", "+79161234567")],
                                  {"user-1": "+79161234567"})
    assert decision.withdraw == ()
    assert decision.record == {"user-1": "+79161234567"}


def test_a_code_confirmed_on_another_number_withdraws_the_old_usage() -> None:
    """The user moved: the usage on the old number ends, the new one is recorded."""
    old = ActiveUsage(1, "user-1", "+79161234567")
    decision = after_confirmation([old], {"user-1": "+79031234567"})
    assert decision.withdraw == (old,)
    assert decision.record == {"user-1": "+79031234567"}


def test_codes_are_independent() -> None:
    """Only the moved code's usage is withdrawn; a first confirmation withdraws nothing."""
    moved = ActiveUsage(2, "user-2", "+79031111111")
    decision = after_confirmation(
        [ActiveUsage(1, "user-1", "+79161234567"), moved, ActiveUsage(3, "other", "+79035555555")],
        {"user-1": "+79161234567", "user-2": "+79032222222", "user-3": "+79033333333"})
    assert decision.withdraw == (moved,)
