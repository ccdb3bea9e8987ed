"""Has the subscriber of a line changed since a day? (Number Recycling, KYC Tenure.)

Pure rules over what the registry knows of one line: its current contract and the start of
its current holder's contract (``activated_at``), and its history (imports and lifecycle
events, each with its contract, status and time).

* A known start decides: a holder who started after the day is a change (the day on which the
  holder signed is not), and so is a line whose contract is terminated now (nobody holds it).
* An unknown start is decided from the history: the contract in force at the end of the day
  must be the current one, in force, and no record since may show another contract, a
  termination, a reassignment or a change of holder. A history that begins after the day
  cannot tell: the answer is :attr:`Since.UNKNOWN`.

Days are calendar days in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum

TERMINATED = "terminated"
HOLDER_CHANGES = frozenset({"number_reassigned", "holder_changed", "contract_terminated",
                            "number_ported_out"})


class Since(Enum):
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Record:
    """One history entry: the line's contract and status after ``change`` at ``occurred_at``."""

    occurred_at: datetime
    change: str
    contract_id: str | None
    status: str | None


@dataclass(frozen=True)
class LineState:
    contract_id: str
    status: str
    activated_at: datetime | None
    history: Sequence[Record] = ()


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), UTC)


def subscriber_since(line: LineState, day: date) -> Since:
    """Whether the line's current holder has held it, without a break, since ``day``."""
    end = end_of(day)
    if line.status == TERMINATED:
        return Since.CHANGED
    if line.activated_at is not None:
        return Since.CHANGED if line.activated_at >= end else Since.UNCHANGED
    history = sorted(line.history, key=lambda r: r.occurred_at)
    before = [r for r in history if r.occurred_at < end]
    after = [r for r in history if r.occurred_at >= end]
    if any(r.change in HOLDER_CHANGES or r.status == TERMINATED
           or r.contract_id not in (None, line.contract_id) for r in after):
        return Since.CHANGED
    if not before:
        return Since.UNKNOWN
    at_end = before[-1]
    if at_end.status == TERMINATED or at_end.contract_id not in (None, line.contract_id):
        return Since.CHANGED
    return Since.UNCHANGED
