"""Messenger accounts: the identification states and the only transitions between them.

``unidentified -> verifying_possession -> pending -> identified | refused | unanswered``;
``identified | pending -> reidentification_required -> pending``; any state
``-> verifying_possession`` on a number change. Only ``identified`` may send messages.

A notice that invalidates a usage (SPEC rule 7) acts on an account whatever its state: an
identified account is blocked, and so is a pending one, because the answer it waits for may
have been given before the event the notice announces. Such an answer is never trusted: the
question is asked again (``reidentification_required -> pending``), and only the answer to that
new question may identify the account.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from numident.core.identification import IDENTIFICATION_CODE_PATTERN
from numident.core.notices import NoticeType
from numident.errors import Conflict, InvalidInput

ACCOUNT_ID_PATTERN = IDENTIFICATION_CODE_PATTERN
"""An account id, as a JSON Schema pattern: the characters and length of an identification
code, the other opaque name of a user that crosses the wire."""
_ACCOUNT_ID = re.compile(ACCOUNT_ID_PATTERN.strip("^$"))


def validate_account_id(value: str) -> str:
    """Return ``value`` when it is 1-128 characters of ``A-Za-z0-9._:-``; raise otherwise."""
    if _ACCOUNT_ID.fullmatch(value) is None:
        raise InvalidInput("accountId must be 1-128 characters of A-Z a-z 0-9 . _ : -",
                           code="INVALID_ACCOUNT_ID")
    return value


def new_identification_code() -> str:
    """A fresh opaque identification code: 144 random bits, URL-safe (``A-Za-z0-9_-``).

    It never derives from the user's name or number, so an operator learns nothing from it.
    """
    return secrets.token_urlsafe(18)


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
    # A pending identification may be asked again (a retry after a restart) without a change;
    # a notice overtaking the question in flight blocks it (rule 7).
    S.PENDING: frozenset({S.IDENTIFIED, S.REFUSED, S.UNANSWERED, S.PENDING,
                          S.REIDENTIFICATION_REQUIRED}),
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


def notice_blocks(notice: NoticeType, *, block_on_sim_swap: bool) -> bool:
    """True when ``notice`` withdraws the trust an identification rests on.

    Every invalidating notice does; a SIM swap only when ``block_on_sim_swap``. A blocking notice
    also voids the answer to any question still in flight for the account.
    """
    return notice.invalidates_usage or block_on_sim_swap


def state_after_notice(current: AccountState, notice: NoticeType, *,
                       block_on_sim_swap: bool) -> AccountState:
    """What a notice does to an account's state.

    A blocking notice (``notice_blocks``) moves an ``identified`` or ``pending`` account to
    ``reidentification_required``. The other states cannot send and rely on no answer: they
    stay, and so does an account already required to identify again.
    """
    if notice_blocks(notice, block_on_sim_swap=block_on_sim_swap) and current in _BLOCKED_BY_NOTICE:
        return S.REIDENTIFICATION_REQUIRED
    return current


_BLOCKED_BY_NOTICE = frozenset({S.IDENTIFIED, S.PENDING})


@dataclass(frozen=True)
class NoticeEffect:
    """What one notice does to one account it names.

    ``target`` is the account's state after it (``reason``, the notice type in capitals, is
    recorded when the state changes); ``records_sim_swap``: the swap's time is kept on the
    account; ``voids_attempt``: the identification question in flight, if any, is voided
    (its answer will be asked again, not trusted).
    """

    target: AccountState
    reason: str
    records_sim_swap: bool
    voids_attempt: bool


def notice_effect(current: AccountState, notice: NoticeType, *,
                  block_on_sim_swap: bool) -> NoticeEffect:
    """The effect of ``notice`` on an account in state ``current`` (SPEC rule 7)."""
    return NoticeEffect(
        target=state_after_notice(current, notice, block_on_sim_swap=block_on_sim_swap),
        reason=notice.value.upper(),
        records_sim_swap=notice is NoticeType.SIM_SWAPPED,
        voids_attempt=notice_blocks(notice, block_on_sim_swap=block_on_sim_swap))
