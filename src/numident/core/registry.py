"""A number's contract in the subscriber registry, and the lifecycle events that change it.

One rule read both ways:

- a lifecycle event of kind K changes the contract like this (:func:`change_for`): a contract
  ends (``contract_terminated``, ``number_ported_out``), the SIM changes (``sim_swapped``),
  or a new contract takes the number (``number_reassigned``, ``holder_changed``);
- this registry difference is event K (:func:`event_for`): when an import lists a number
  differently from the registry, a contract in force listed under another contract id was
  reassigned, one listed as terminated was terminated; any other difference owes no notice.

The import applies the second set-based, in SQL (``operator.registry_switch``); the SQL is
built from :data:`DIFFERENCE_EVENTS`, so both carry out this one decision.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from numident.core.identification import ContractStatus
from numident.core.notices import NoticeType


@dataclass(frozen=True)
class Contract:
    """The contract that holds a number, as the registry or an import lists it."""

    contract_id: str
    status: ContractStatus
    activated_at: datetime | None = None
    sim_changed_at: datetime | None = None

    @property
    def in_force(self) -> bool:
        """An ended contract does not come back: nothing that happens to it is an event."""
        return self.status is not ContractStatus.TERMINATED


@dataclass(frozen=True)
class ContractChange:
    """What an event changes in a contract; ``None`` fields are left as they are."""

    status: ContractStatus | None = None
    contract_id: str | None = None
    activated_at: datetime | None = None
    sim_changed_at: datetime | None = None

    def values(self) -> dict[str, object]:
        """The registry columns this change sets, by column name."""
        values: dict[str, object] = {}
        if self.status is not None:
            values["status"] = self.status.value
        if self.contract_id is not None:
            values["contract_id"] = self.contract_id
        if self.activated_at is not None:
            values["activated_at"] = self.activated_at
        if self.sim_changed_at is not None:
            values["sim_changed_at"] = self.sim_changed_at
        return values

    def apply(self, contract: Contract) -> Contract:
        return replace(contract, **{name: value for name, value in vars(self).items()
                                    if value is not None})


_ENDS = frozenset({NoticeType.CONTRACT_TERMINATED, NoticeType.NUMBER_PORTED_OUT})
_NEW_CONTRACT = frozenset({NoticeType.NUMBER_REASSIGNED, NoticeType.HOLDER_CHANGED})


def change_for(kind: NoticeType, occurred_at: datetime,
               new_contract_id: str | None = None) -> ContractChange:
    """What a lifecycle event of ``kind`` at ``occurred_at`` does to the number's contract.

    A new contract is in force from the event on; it keeps the old contract id unless the
    event names the new one (``new_contract_id``).
    """
    if kind in _ENDS:
        return ContractChange(status=ContractStatus.TERMINATED)
    if kind is NoticeType.SIM_SWAPPED:
        return ContractChange(sim_changed_at=occurred_at)
    if kind in _NEW_CONTRACT:
        return ContractChange(status=ContractStatus.ACTIVE, activated_at=occurred_at,
                              contract_id=new_contract_id or None)
    raise AssertionError(kind)  # pragma: no cover - NoticeType is closed


class Difference(Enum):
    """A difference between the contract stored for a number and the one an import lists."""

    OTHER_CONTRACT = "the number is listed under another contract id"
    CONTRACT_ENDED = "the contract is listed as terminated"


DIFFERENCE_EVENTS: tuple[tuple[Difference, NoticeType], ...] = (
    (Difference.OTHER_CONTRACT, NoticeType.NUMBER_REASSIGNED),
    (Difference.CONTRACT_ENDED, NoticeType.CONTRACT_TERMINATED),
)
"""The differences that are lifecycle events, first match wins; each counts only while the
stored contract is in force."""


def differences(stored: Contract, listed: Contract) -> frozenset[Difference]:
    """The differences of :class:`Difference` between ``stored`` and ``listed``."""
    found = set()
    if listed.contract_id != stored.contract_id:
        found.add(Difference.OTHER_CONTRACT)
    if listed.status is ContractStatus.TERMINATED:
        found.add(Difference.CONTRACT_ENDED)
    return frozenset(found)


def event_for(stored: Contract, listed: Contract) -> NoticeType | None:
    """The lifecycle event that listing ``listed`` where the registry holds ``stored`` is,
    or None when the difference owes the organizers no notice."""
    if not stored.in_force:
        return None
    found = differences(stored, listed)
    return next((kind for difference, kind in DIFFERENCE_EVENTS if difference in found), None)
