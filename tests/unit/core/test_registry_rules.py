"""What lifecycle events do to a number's contract, and which registry differences are events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from numident.core.identification import ContractStatus
from numident.core.notices import NoticeType
from numident.core.registry import (
    DIFFERENCE_EVENTS,
    Contract,
    ContractChange,
    Difference,
    change_for,
    event_for,
)

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ACTIVE, SUSPENDED, TERMINATED = (ContractStatus.ACTIVE, ContractStatus.SUSPENDED,
                                 ContractStatus.TERMINATED)


@pytest.mark.parametrize("kind", [NoticeType.CONTRACT_TERMINATED, NoticeType.NUMBER_PORTED_OUT])
def test_a_termination_or_a_port_out_ends_the_contract(kind: NoticeType) -> None:
    """Only the status changes: the contract id and its dates are kept for the history."""
    assert change_for(kind, AT).values() == {"status": "terminated"}


def test_a_sim_swap_changes_only_the_sim_date() -> None:
    """The contract stays in force; the swap's time is recorded."""
    assert change_for(NoticeType.SIM_SWAPPED, AT).values() == {"sim_changed_at": AT}


@pytest.mark.parametrize("kind", [NoticeType.NUMBER_REASSIGNED, NoticeType.HOLDER_CHANGED])
def test_a_new_holder_brings_a_contract_in_force_from_the_event(kind: NoticeType) -> None:
    """Active from the event on, under the new contract id when the event names one."""
    assert change_for(kind, AT, "c-2").values() == {
        "status": "active", "activated_at": AT, "contract_id": "c-2"}
    assert change_for(kind, AT).values() == {"status": "active", "activated_at": AT}
    assert change_for(kind, AT, "").values() == {"status": "active", "activated_at": AT}


def test_a_change_leaves_what_it_does_not_name() -> None:
    """Applied to a contract, a change replaces only its own fields."""
    stored = Contract("c-1", SUSPENDED, activated_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert change_for(NoticeType.SIM_SWAPPED, AT).apply(stored) == Contract(
        "c-1", SUSPENDED, activated_at=stored.activated_at, sim_changed_at=AT)
    assert ContractChange().apply(stored) == stored


@pytest.mark.parametrize(("stored", "listed", "event"), [
    (Contract("c-1", ACTIVE), Contract("c-2", ACTIVE), NoticeType.NUMBER_REASSIGNED),
    (Contract("c-1", SUSPENDED), Contract("c-2", ACTIVE), NoticeType.NUMBER_REASSIGNED),
    (Contract("c-1", ACTIVE), Contract("c-2", TERMINATED), NoticeType.NUMBER_REASSIGNED),
    (Contract("c-1", ACTIVE), Contract("c-1", TERMINATED), NoticeType.CONTRACT_TERMINATED),
    (Contract("c-1", SUSPENDED), Contract("c-1", TERMINATED), NoticeType.CONTRACT_TERMINATED),
    (Contract("c-1", ACTIVE), Contract("c-1", SUSPENDED), None),
    (Contract("c-1", SUSPENDED), Contract("c-1", ACTIVE), None),
    (Contract("c-1", ACTIVE), Contract("c-1", ACTIVE), None),
    (Contract("c-1", TERMINATED), Contract("c-2", ACTIVE), None),
    (Contract("c-1", TERMINATED), Contract("c-1", ACTIVE), None),
])
def test_a_registry_difference_is_the_event_it_amounts_to(
        stored: Contract, listed: Contract, event: NoticeType | None) -> None:
    """Another contract id is a reassignment (it wins over a listed end), a listed end of the
    same contract a termination; a suspension is no event, and an ended contract has none."""
    assert event_for(stored, listed) is event


@pytest.mark.parametrize(("stored", "listed"), [
    (Contract("c-1", ACTIVE), Contract("c-2", ACTIVE)),
    (Contract("c-1", SUSPENDED), Contract("c-1", TERMINATED)),
])
def test_the_event_of_a_difference_changes_the_stored_contract_into_the_listed_one(
        stored: Contract, listed: Contract) -> None:
    """The two directions are one rule: the event a difference is makes that difference."""
    kind = event_for(stored, listed)
    assert kind is not None
    changed = change_for(kind, AT, listed.contract_id).apply(stored)
    assert (changed.contract_id, changed.status) == (listed.contract_id, listed.status)


def test_every_difference_has_one_event() -> None:
    """The SQL of the import is built from this table: each difference once, in order."""
    assert [d for d, _ in DIFFERENCE_EVENTS] == list(Difference)
