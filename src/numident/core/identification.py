"""The identification request: what it carries, when it is due, and what the answer means.

Rules (SPEC): an operator answers every accepted request within 20 minutes of receipt; it never
accepts work it cannot answer in time. An answer is ``confirmed`` only when a contract in force
holds the number; anything else is ``not_found``. These are values, not exceptions.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum

from numident.errors import InvalidIdentificationCode

ANSWER_DEADLINE = timedelta(minutes=20)
IDENTIFICATION_CODE_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"
"""An identification code, as a JSON Schema pattern."""
_CODE = re.compile(IDENTIFICATION_CODE_PATTERN.strip("^$"))


class Result(StrEnum):
    CONFIRMED = "confirmed"
    NOT_FOUND = "not_found"


class RequestStatus(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    EXPIRED = "expired"
    """Not answered by its deadline (after downtime, say): the organizer may ask again."""


NOT_ANSWERED_IN_TIME = "not answered by answerDue; the request may be sent again"


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


def answer_due(received_at: datetime, deadline: timedelta = ANSWER_DEADLINE) -> datetime:
    return received_at + deadline


def answer_for(status: ContractStatus | None) -> Result:
    """The answer the registry gives for a number whose current contract has ``status``.

    A suspended contract is still the subscriber's contract (suspension for non-payment does not
    end it), so it confirms; a terminated contract or no contract does not.
    """
    if status in (ContractStatus.ACTIVE, ContractStatus.SUSPENDED):
        return Result.CONFIRMED
    return Result.NOT_FOUND
