"""The identification request: what it carries, when it is due, and what the answer means.

Rules (SPEC): an operator answers every accepted request within 20 minutes of receipt; it never
accepts work it cannot answer in time. An answer is ``confirmed`` only when a contract in force
holds the number; anything else is ``not_found``. These are values, not exceptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from numident.errors import InvalidIdentificationCode

ANSWER_DEADLINE = timedelta(minutes=20)
_CODE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Result(StrEnum):
    CONFIRMED = "confirmed"
    NOT_FOUND = "not_found"


class RequestStatus(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"


class ContractStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


def validate_identification_code(code: object) -> str:
    """Return ``code`` when it is 1-128 characters of ``A-Za-z0-9._:-``; raise otherwise."""
    if not isinstance(code, str) or _CODE.fullmatch(code) is None:
        raise InvalidIdentificationCode(
            "identificationCode must be 1-128 characters of A-Z a-z 0-9 . _ : -"
        )
    return code


def answer_due(received_at: datetime) -> datetime:
    return received_at + ANSWER_DEADLINE


def answer_for(status: ContractStatus | None) -> Result:
    """The answer the registry gives for a number whose current contract has ``status``.

    A suspended contract is still the subscriber's contract (suspension for non-payment does not
    end it), so it confirms; a terminated contract or no contract does not.
    """
    if status in (ContractStatus.ACTIVE, ContractStatus.SUSPENDED):
        return Result.CONFIRMED
    return Result.NOT_FOUND


@dataclass(frozen=True)
class Admission:
    """Whether a deferred request may be accepted now; ``retry_after`` seconds when not."""

    accepted: bool
    retry_after: int = 0
    projected_answer: datetime | None = None


def admit(*, now: datetime, queued: int, seconds_per_check: float, workers: int,
          max_pending: int, safety: timedelta = timedelta(minutes=2)) -> Admission:
    """Decide whether one more deferred request can still be answered before its deadline.

    The queue is served earliest-deadline-first by ``workers`` in parallel, each check taking
    ``seconds_per_check``; a new request is answered after everything already queued. It is
    accepted only if that projected answer falls ``safety`` before ``now + 20 minutes`` and the
    queue is below ``max_pending``. When refused, ``retry_after`` is the time for the queue to
    drain far enough that the request would fit.
    """
    workers = max(1, workers)
    wait = (queued + 1) * seconds_per_check / workers
    budget = (ANSWER_DEADLINE - safety).total_seconds()
    projected = now + timedelta(seconds=wait)
    if queued < max_pending and wait <= budget:
        return Admission(True, projected_answer=projected)
    excess = max(wait - budget, (queued + 1 - max_pending) * seconds_per_check / workers, 1.0)
    return Admission(False, retry_after=int(excess) + 1)
