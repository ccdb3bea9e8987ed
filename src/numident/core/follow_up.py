"""The follow-up of one identification attempt: what each reply of the gateway leads to.

The replies (what the client of a gateway returns for every call, never raising):

- :class:`Answer`: the gateway's view of the request, pending (``result`` None) or answered;
- :class:`TryLater`: worth repeating (network error, timeout, 5xx, 429 with its
  ``Retry-After``, a refused token);
- :class:`Refused`: the gateway will never accept this request; ``reason`` is its code.

And the rule (:func:`next_step`):

- ``confirmed`` -> ``identified``; ``not_found`` -> ``refused`` (reason ``NOT_FOUND``);
- a pending answer is polled again, the n-th poll after ``wait(n)`` seconds;
- a :class:`TryLater` is repeated after ``wait(failures)`` seconds, or its ``retry_after`` when
  that is longer;
- a :class:`Refused` ends as ``unanswered`` with the gateway's code as the reason: the operator
  never answered the question;
- no answer by the deadline (``answer_due``, the gateway's once it states one) ends as
  ``unanswered`` (``DEADLINE_PASSED`` or the last error); one last look is taken at the
  deadline itself;
- an answer to an attempt that a notice voided (``invalidated_by``) is not trusted, whatever it
  says: the question is asked again as a new request (:class:`Reask`), with a fresh window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from numident.core.accounts import AccountState
from numident.core.identification import ANSWER_DEADLINE, Result

DEADLINE_PASSED = "DEADLINE_PASSED"
NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True)
class Answer:
    request_id: str
    result: Result | None
    """None while the request is pending."""
    received_at: datetime | None
    answer_due: datetime | None


@dataclass(frozen=True)
class TryLater:
    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class Refused:
    reason: str


Reply = Answer | TryLater | Refused


@dataclass(frozen=True)
class Attempt:
    """One question about (account, number) to one operator, as far as it has got."""

    id: str
    account_id: str
    phone_number: str
    identification_code: str
    operator_inn: str
    request_id: str | None
    status: str
    started_at: datetime
    answer_due: datetime
    next_poll_at: datetime
    failures: int = 0
    polls: int = 0
    last_error: str | None = None
    invalidated_by: str | None = None
    """The notice (CloudEvent id) that voided the question in flight, if one did."""


@dataclass(frozen=True)
class Finish:
    outcome: AccountState
    reason: str | None


@dataclass(frozen=True)
class Wait:
    seconds: float
    attempt: Attempt


@dataclass(frozen=True)
class Reask:
    """A notice overtook the question: ``voided`` is not trusted, ``attempt`` asks anew now."""

    voided: Result
    notice: str
    attempt: Attempt


Backoff = Callable[[int], float]
"""The seconds to wait before repetition ``n`` (0-based) of a poll or of a failed call."""


def next_step(attempt: Attempt, reply: Reply, now: datetime, *, wait: Backoff,
              window: float = ANSWER_DEADLINE.total_seconds()) -> Finish | Wait | Reask:
    """What to do after ``reply`` to ``attempt`` arrived at ``now``.

    An answer to an attempt a notice voided is asked again as a new request, with a deadline
    ``window`` seconds from ``now`` (the gateway states its own once it accepts the request).
    """
    if isinstance(reply, Answer) and reply.result is not None:
        if attempt.invalidated_by is not None:
            return Reask(reply.result, attempt.invalidated_by, replace(
                attempt, request_id=None, invalidated_by=None, failures=0, polls=0,
                last_error=None, answer_due=now + timedelta(seconds=window), next_poll_at=now))
        if reply.result is Result.CONFIRMED:
            return Finish(AccountState.IDENTIFIED, None)
        return Finish(AccountState.REFUSED, NOT_FOUND)
    if isinstance(reply, Refused):
        return Finish(AccountState.UNANSWERED, reply.reason)
    if isinstance(reply, Answer):
        moved = replace(attempt, request_id=reply.request_id, polls=attempt.polls + 1,
                        answer_due=reply.answer_due or attempt.answer_due, last_error=None)
        delay = wait(attempt.polls)
    else:
        moved = replace(attempt, failures=attempt.failures + 1, last_error=reply.reason)
        delay = wait(attempt.failures)
        if reply.retry_after is not None:
            delay = max(delay, reply.retry_after)
    remaining = (moved.answer_due - now).total_seconds()
    if remaining <= 0:
        return Finish(AccountState.UNANSWERED, moved.last_error or DEADLINE_PASSED)
    delay = min(delay, remaining)
    return Wait(delay, replace(moved, next_poll_at=now + timedelta(seconds=delay)))
