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
