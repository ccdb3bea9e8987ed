"""Messenger accounts: the identification states and the only transitions between them.

``unidentified -> verifying_possession -> pending -> identified | refused | unanswered``;
``identified -> reidentification_required -> pending``; any state ``-> verifying_possession``
on a number change. Only ``identified`` may send messages.
"""

from __future__ import annotations

from enum import StrEnum

from numident.core.notices import NoticeType
from numident.errors import Conflict


class AccountState(StrEnum):
    UNIDENTIFIED = "unidentified"
    VERIFYING_POSSESSION = "verifying_possession"
    PENDING = "pending"
    IDENTIFIED = "identified"
    REFUSED = "refused"
    UNANSWERED = "unanswered"
    REIDENTIFICATION_REQUIRED = "reidentification_required"

    @property
    def can_send(self) -> bool:
        return self is AccountState.IDENTIFIED


S = AccountState
_ALLOWED: dict[AccountState, frozenset[AccountState]] = {
    S.UNIDENTIFIED: frozenset(),
    S.VERIFYING_POSSESSION: frozenset({S.PENDING}),
    # A pending identification may be asked again (a retry after a restart) without a change.
    S.PENDING: frozenset({S.IDENTIFIED, S.REFUSED, S.UNANSWERED, S.PENDING}),
    S.IDENTIFIED: frozenset({S.REIDENTIFICATION_REQUIRED}),
    # An organizer may retry after a refusal or a missed deadline (rule 5).
    S.REFUSED: frozenset({S.PENDING}),
    S.UNANSWERED: frozenset({S.PENDING}),
    S.REIDENTIFICATION_REQUIRED: frozenset({S.PENDING}),
}


def can_transition(current: AccountState, target: AccountState) -> bool:
    """True when the rules allow ``current -> target``; a number change is always allowed."""
    return target is S.VERIFYING_POSSESSION or target in _ALLOWED[current]


def transition(current: AccountState, target: AccountState) -> AccountState:
    """Return ``target`` or raise :class:`Conflict` naming the refused transition."""
    if not can_transition(current, target):
        raise Conflict(f"an account in state {current} cannot move to {target}",
                       code="INVALID_STATE_TRANSITION")
    return target


def state_after_notice(current: AccountState, notice: NoticeType, *,
                       block_on_sim_swap: bool) -> AccountState:
    """What a notice does to an account: an invalidating notice blocks an identified account.

    A notice for an account that is not ``identified`` changes nothing (it is already unable to
    send, or is being identified anew). A SIM swap blocks only when ``block_on_sim_swap``.
    """
    blocks = notice.invalidates_usage or block_on_sim_swap
    if blocks and current is S.IDENTIFIED:
        return S.REIDENTIFICATION_REQUIRED
    return current
