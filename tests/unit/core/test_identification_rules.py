"""The rules of an identification request: codes, deadline, answers, admission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from numident.core.identification import (
    ANSWER_DEADLINE,
    ContractStatus,
    Result,
    admit,
    answer_due,
    answer_for,
    validate_identification_code,
)
from numident.errors import InvalidIdentificationCode

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("code", ["a", "user-42", "A.b_c:d-9", "x" * 128])
def test_codes_of_the_allowed_alphabet_are_accepted(code: str) -> None:
    """1-128 characters of A-Za-z0-9._:- make an identification code."""
    assert validate_identification_code(code) == code


@pytest.mark.parametrize("code", ["", "x" * 129, "has space", "ümlaut", "a/b", "a\n", 42, None])
def test_codes_outside_the_alphabet_or_length_are_refused(code: object) -> None:
    """Anything else is refused with its own stable code."""
    with pytest.raises(InvalidIdentificationCode) as caught:
        validate_identification_code(code)
    assert caught.value.code == "INVALID_IDENTIFICATION_CODE"


@given(st.text(min_size=1, max_size=200))
def test_code_validation_accepts_exactly_the_alphabet(code: str) -> None:
    """The validator's verdict matches the rule character by character."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-")
    expected = len(code) <= 128 and set(code) <= allowed
    try:
        validate_identification_code(code)
    except InvalidIdentificationCode:
        assert not expected
    else:
        assert expected


def test_answer_is_due_twenty_minutes_after_receipt() -> None:
    """The deadline is receipt plus 20 minutes."""
    assert timedelta(minutes=20) == ANSWER_DEADLINE
    assert answer_due(NOW) == datetime(2026, 5, 1, 10, 20, tzinfo=UTC)


def test_only_a_contract_in_force_confirms() -> None:
    """Active and suspended contracts confirm; terminated or unknown numbers do not."""
    assert answer_for(ContractStatus.ACTIVE) is Result.CONFIRMED
    assert answer_for(ContractStatus.SUSPENDED) is Result.CONFIRMED
    assert answer_for(ContractStatus.TERMINATED) is Result.NOT_FOUND
    assert answer_for(None) is Result.NOT_FOUND


def test_admission_accepts_work_that_fits_before_the_deadline() -> None:
    """An empty queue accepts, projecting the answer after one check."""
    decision = admit(now=NOW, queued=0, seconds_per_check=2.0, workers=1, max_pending=10)
    assert decision.accepted
    assert decision.projected_answer == NOW + timedelta(seconds=2)


def test_admission_refuses_work_that_would_miss_the_deadline() -> None:
    """A queue that would answer after 18 minutes refuses with a Retry-After that fits."""
    # 600 queued at 2 s each with one worker: the 601st answer comes after 1202 s > 1080 s.
    decision = admit(now=NOW, queued=600, seconds_per_check=2.0, workers=1, max_pending=10_000)
    assert not decision.accepted
    assert decision.retry_after == 123
    assert admit(now=NOW, queued=539, seconds_per_check=2.0, workers=1,
                 max_pending=10_000).accepted
    assert not admit(now=NOW, queued=540, seconds_per_check=2.0, workers=1,
                     max_pending=10_000).accepted


def test_admission_respects_the_queue_bound() -> None:
    """A full queue refuses even when checks are instant."""
    assert not admit(now=NOW, queued=10, seconds_per_check=0.001, workers=4,
                     max_pending=10).accepted
    assert admit(now=NOW, queued=9, seconds_per_check=0.001, workers=4, max_pending=10).accepted
