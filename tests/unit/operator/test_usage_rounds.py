"""The order in which one transaction records usages (``operator.identification._rounds``)."""

from __future__ import annotations

from datetime import UTC, datetime

from numident.core.identification import RequestStatus, Result
from numident.operator.identification import RequestView, _rounds

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def view(code: str, number: str) -> RequestView:
    return RequestView(f"{code}@{number}", number, code, RequestStatus.ANSWERED,
                       Result.CONFIRMED, AT, AT, AT)


def test_each_round_holds_a_code_once_in_code_order() -> None:
    """Round n holds the n-th confirmation of each code, sorted by code; a code's own
    confirmations keep their order, so its last number is recorded last."""
    confirmed = [view("b", "+1"), view("a", "+1"), view("b", "+2"), view("c", "+1"),
                 view("b", "+3"), view("a", "+2")]
    rounds = [[(v.identification_code, v.phone_number) for v in r] for r in _rounds(confirmed)]
    assert rounds == [[("a", "+1"), ("b", "+1"), ("c", "+1")], [("a", "+2"), ("b", "+2")],
                      [("b", "+3")]]


def test_no_confirmation_makes_no_round() -> None:
    """An answer without confirmations records nothing, in no round."""
    assert _rounds([]) == []
