"""Account states: only the transitions of SPEC, what a notice does, and valid account ids."""

from __future__ import annotations

import pytest

from numident.core.accounts import AccountState as S
from numident.core.accounts import (
    NoticeEffect,
    can_transition,
    new_identification_code,
    notice_blocks,
    notice_effect,
    state_after_notice,
    transition,
    validate_account_id,
)
from numident.core.notices import NoticeType
from numident.errors import Conflict, InvalidInput


def test_only_identified_accounts_can_send() -> None:
    """can_send is true in exactly one state."""
    assert [s for s in S if s.can_send] == [S.IDENTIFIED]


@pytest.mark.parametrize(("current", "target"), [
    (S.VERIFYING_POSSESSION, S.PENDING),
    (S.PENDING, S.IDENTIFIED), (S.PENDING, S.REFUSED), (S.PENDING, S.UNANSWERED),
    (S.IDENTIFIED, S.REIDENTIFICATION_REQUIRED), (S.REIDENTIFICATION_REQUIRED, S.PENDING),
    (S.REFUSED, S.PENDING), (S.UNANSWERED, S.PENDING),
])
def test_spec_transitions_are_allowed(current: S, target: S) -> None:
    """The arrows of SPEC's state diagram are allowed."""
    assert transition(current, target) is target


@pytest.mark.parametrize("current", list(S))
def test_a_number_change_is_allowed_from_any_state(current: S) -> None:
    """Any state may go back to verifying possession when the number changes."""
    assert can_transition(current, S.VERIFYING_POSSESSION)


@pytest.mark.parametrize(("current", "target"), [
    (S.UNIDENTIFIED, S.IDENTIFIED), (S.VERIFYING_POSSESSION, S.IDENTIFIED),
    (S.REFUSED, S.IDENTIFIED), (S.REIDENTIFICATION_REQUIRED, S.IDENTIFIED),
    (S.IDENTIFIED, S.PENDING),
])
def test_shortcuts_to_identified_are_refused(current: S, target: S) -> None:
    """Nothing reaches identified without an operator's answer to a pending request."""
    with pytest.raises(Conflict) as caught:
        transition(current, target)
    assert caught.value.code == "INVALID_STATE_TRANSITION"


@pytest.mark.parametrize("kind", [k for k in NoticeType if k is not NoticeType.SIM_SWAPPED])
def test_invalidating_notice_blocks_an_identified_account(kind: NoticeType) -> None:
    """Contract ends, ports, reassignments and holder changes require re-identification."""
    assert state_after_notice(S.IDENTIFIED, kind, block_on_sim_swap=False) is \
        S.REIDENTIFICATION_REQUIRED


def test_sim_swap_blocks_only_when_configured() -> None:
    """A SIM swap is recorded; it blocks only when the organizer chose so."""
    assert state_after_notice(S.IDENTIFIED, NoticeType.SIM_SWAPPED,
                              block_on_sim_swap=False) is S.IDENTIFIED
    assert state_after_notice(S.IDENTIFIED, NoticeType.SIM_SWAPPED,
                              block_on_sim_swap=True) is S.REIDENTIFICATION_REQUIRED


@pytest.mark.parametrize("kind", [k for k in NoticeType if k is not NoticeType.SIM_SWAPPED])
def test_invalidating_notice_blocks_a_pending_account(kind: NoticeType) -> None:
    """A notice during identification blocks it: the answer awaited may predate the event."""
    assert state_after_notice(S.PENDING, kind, block_on_sim_swap=False) is \
        S.REIDENTIFICATION_REQUIRED
    assert can_transition(S.PENDING, S.REIDENTIFICATION_REQUIRED)


def test_sim_swap_blocks_a_pending_account_only_when_configured() -> None:
    """A SIM swap during identification follows the same switch as for identified accounts."""
    assert state_after_notice(S.PENDING, NoticeType.SIM_SWAPPED,
                              block_on_sim_swap=False) is S.PENDING
    assert state_after_notice(S.PENDING, NoticeType.SIM_SWAPPED,
                              block_on_sim_swap=True) is S.REIDENTIFICATION_REQUIRED


@pytest.mark.parametrize("current", [S.UNIDENTIFIED, S.VERIFYING_POSSESSION, S.REFUSED,
                                     S.UNANSWERED, S.REIDENTIFICATION_REQUIRED])
def test_notice_leaves_accounts_that_rely_on_no_answer_where_they_are(current: S) -> None:
    """States that cannot send and await no answer are not changed by a notice."""
    assert state_after_notice(current, NoticeType.CONTRACT_TERMINATED,
                              block_on_sim_swap=True) is current


def test_which_notices_block() -> None:
    """Every invalidating notice blocks; a SIM swap only when the organizer chose so."""
    assert [k for k in NoticeType if notice_blocks(k, block_on_sim_swap=False)] == [
        k for k in NoticeType if k is not NoticeType.SIM_SWAPPED]
    assert all(notice_blocks(k, block_on_sim_swap=True) for k in NoticeType)


def test_notice_types_round_trip_through_cloudevent_types() -> None:
    """Each notice has the CloudEvent type org.numident.notice.<kind>."""
    for kind in NoticeType:
        assert kind.cloudevent_type == f"org.numident.notice.{kind.value}"
        assert NoticeType.from_cloudevent_type(kind.cloudevent_type) is kind
    with pytest.raises(ValueError, match="not a numident notice"):
        NoticeType.from_cloudevent_type("com.example.other")


@pytest.mark.parametrize("account_id", ["u", "user-42", "a.b_c:d-e", "x" * 128])
def test_account_ids_of_the_allowed_characters_are_accepted(account_id: str) -> None:
    """1-128 characters of A-Z a-z 0-9 . _ : - are an account id, returned as given."""
    assert validate_account_id(account_id) == account_id


@pytest.mark.parametrize("account_id", ["", "x" * 129, "user 1", "user/1", "юзер", "a\n"])
def test_other_account_ids_are_refused_with_a_stable_code(account_id: str) -> None:
    """Empty, too long, spaces, slashes, other scripts, control characters: INVALID_ACCOUNT_ID."""
    with pytest.raises(InvalidInput) as refused:
        validate_account_id(account_id)
    assert refused.value.code == "INVALID_ACCOUNT_ID"


def test_identification_codes_are_fresh_and_opaque() -> None:
    """144 random bits, URL-safe: 24 characters, never the same twice."""
    codes = {new_identification_code() for _ in range(100)}
    assert len(codes) == 100
    assert all(len(c) == 24 and c.replace("-", "").replace("_", "").isalnum() for c in codes)


def test_a_blocking_notice_voids_the_question_and_blocks_a_pending_account() -> None:
    """An invalidating notice: reidentification_required, the attempt voided, its type the
    reason; no SIM swap is recorded."""
    assert notice_effect(S.PENDING, NoticeType.NUMBER_PORTED_OUT,
                         block_on_sim_swap=False) == NoticeEffect(
        S.REIDENTIFICATION_REQUIRED, "NUMBER_PORTED_OUT", records_sim_swap=False,
        voids_attempt=True)


@pytest.mark.parametrize("block", [False, True])
def test_a_sim_swap_is_recorded_and_blocks_only_when_configured(block: bool) -> None:
    """A SIM swap is always recorded on the account; it voids and blocks only on request."""
    effect = notice_effect(S.IDENTIFIED, NoticeType.SIM_SWAPPED, block_on_sim_swap=block)
    assert effect.records_sim_swap
    assert (effect.voids_attempt, effect.target) == (
        block, S.REIDENTIFICATION_REQUIRED if block else S.IDENTIFIED)
