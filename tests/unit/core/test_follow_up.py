"""The follow-up of an identification attempt (``core.follow_up.next_step``), without I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from numident.core.accounts import AccountState
from numident.core.follow_up import (
    DEADLINE_PASSED,
    Answer,
    Attempt,
    Finish,
    Reask,
    Refused,
    TryLater,
    Wait,
    next_step,
)
from numident.core.identification import Result

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NUMBER = "+79161234567"


def doubling(step: int) -> float:
    """1 s doubling, at most 30 s."""
    return float(min(2 ** step, 30))


FRESH = Attempt("a", "u", NUMBER, "code", "inn", None, "open", NOW, NOW + timedelta(minutes=20),
                NOW)


def attempt(*, polls: int = 0, failures: int = 0) -> Attempt:
    return replace(FRESH, polls=polls, failures=failures)


def test_a_confirmed_answer_identifies() -> None:
    """confirmed -> identified, with no reason."""
    step = next_step(attempt(), Answer("r1", Result.CONFIRMED, NOW, None), NOW, wait=doubling)
    assert step == Finish(AccountState.IDENTIFIED, None)


def test_pending_answers_are_polled_after_the_backoff_of_their_count() -> None:
    """The n-th poll waits wait(n): 1, 2, 4... seconds, and is counted."""
    steps = [next_step(attempt(polls=n), Answer("r1", None, NOW, None), NOW, wait=doubling)
             for n in range(4)]
    assert [(s.seconds, s.attempt.polls) for s in steps if isinstance(s, Wait)] == [
        (1, 1), (2, 2), (4, 3), (8, 4)]


def test_failures_are_repeated_after_the_backoff_of_their_count() -> None:
    """A failed call waits wait(failures), remembers the error and counts the failure."""
    step = next_step(attempt(failures=3), TryLater("HTTP 503"), NOW, wait=doubling)
    assert isinstance(step, Wait)
    assert (step.seconds, step.attempt.failures, step.attempt.last_error) == (8, 4, "HTTP 503")
    assert step.attempt.next_poll_at == NOW + timedelta(seconds=8)


def test_no_answer_by_the_deadline_is_unanswered() -> None:
    """At the deadline without an answer or an error: DEADLINE_PASSED."""
    step = next_step(attempt(), Answer("r1", None, NOW, None), NOW + timedelta(minutes=20),
                     wait=doubling)
    assert step == Finish(AccountState.UNANSWERED, DEADLINE_PASSED)


def test_retry_after_longer_than_the_deadline_is_cut_to_the_deadline() -> None:
    """The last look is taken at the deadline itself, not after it."""
    now = NOW
    attempt = Attempt("a", "u", NUMBER, "code", "inn", None, "open", now,
                      now + timedelta(seconds=100), now)
    step = next_step(attempt, TryLater("TOO_MANY_REQUESTS", 500), now, wait=doubling)
    assert isinstance(step, Wait)
    assert step.seconds == 100
    late = next_step(attempt, TryLater("X"), now + timedelta(seconds=100), wait=doubling)
    assert late == Finish(AccountState.UNANSWERED, "X")


def test_gateway_deadline_replaces_the_local_estimate() -> None:
    """Once the gateway states answerDue, that is the deadline."""
    now = NOW
    attempt = Attempt("a", "u", NUMBER, "code", "inn", None, "open", now,
                      now + timedelta(minutes=20), now)
    due = now + timedelta(minutes=19)
    step = next_step(attempt, Answer("r1", None, now, due), now, wait=doubling)
    assert isinstance(step, Wait)
    assert (step.attempt.answer_due, step.attempt.request_id) == (due, "r1")
    assert next_step(attempt, Answer("r1", Result.NOT_FOUND, now, due), now,
                     wait=doubling) == Finish(AccountState.REFUSED, "NOT_FOUND")
    assert next_step(attempt, Refused("FORBIDDEN"), now,
                     wait=doubling) == Finish(AccountState.UNANSWERED, "FORBIDDEN")


@pytest.mark.parametrize("result", list(Result))
def test_answer_to_a_question_a_notice_voided_is_asked_again(result: Result) -> None:
    """Whatever a voided attempt's answer says, it is not trusted: a new request, a new window."""
    now = NOW
    voided = Attempt("a", "u", NUMBER, "code", "inn", "r1", "open", now,
                     now + timedelta(minutes=20), now, failures=2, polls=3,
                     invalidated_by="evt-9")
    later = now + timedelta(minutes=5)
    step = next_step(voided, Answer("r1", result, now, now + timedelta(minutes=20)), later,
                     wait=doubling, window=1200)
    assert isinstance(step, Reask)
    assert (step.voided, step.notice) == (result, "evt-9")
    fresh = step.attempt
    assert (fresh.request_id, fresh.invalidated_by, fresh.failures, fresh.polls) == (
        None, None, 0, 0)
    assert (fresh.next_poll_at, fresh.answer_due) == (later, later + timedelta(minutes=20))


def test_a_voided_attempt_still_waits_for_its_pending_answer() -> None:
    """Only one question is in flight: a voided attempt keeps polling, and stays voided."""
    now = NOW
    voided = Attempt("a", "u", NUMBER, "code", "inn", "r1", "open", now,
                     now + timedelta(minutes=20), now, invalidated_by="evt-9")
    step = next_step(voided, Answer("r1", None, now, None), now, wait=doubling)
    assert isinstance(step, Wait)
    assert step.attempt.invalidated_by == "evt-9"
    refused = next_step(voided, Refused("FORBIDDEN"), now, wait=doubling)
    assert refused == Finish(AccountState.UNANSWERED, "FORBIDDEN")
