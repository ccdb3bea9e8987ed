"""The identification answer: the document the gateway builds is the one the client reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from numident.core.identification import NOT_ANSWERED_IN_TIME, RequestStatus, Result
from numident.wire.answer import ReadAnswer, answer_document, read_answer

RECEIVED = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
DUE = RECEIVED + timedelta(minutes=20)


@dataclass(frozen=True)
class View:
    request_id: str = "r-1"
    phone_number: str = "+79161234567"
    identification_code: str = "user-42"
    status: RequestStatus = RequestStatus.PENDING
    result: Result | None = None
    received_at: datetime = RECEIVED
    answer_due: datetime = DUE
    answered_at: datetime | None = None


def test_a_pending_answer_has_no_result_and_reads_back_pending() -> None:
    """pending: the times, no result."""
    document = answer_document(View())
    assert document == {"requestId": "r-1", "phoneNumber": "+79161234567",
                        "identificationCode": "user-42", "status": "pending",
                        "receivedAt": "2026-12-01T10:00:00Z", "answerDue": "2026-12-01T10:20:00Z"}
    assert read_answer(document) == ReadAnswer("r-1", RequestStatus.PENDING, None, RECEIVED, DUE)


def test_an_answered_request_carries_its_result_and_when() -> None:
    """answered: result and answeredAt."""
    document = answer_document(View(status=RequestStatus.ANSWERED, result=Result.NOT_FOUND,
                                    answered_at=RECEIVED + timedelta(seconds=3)))
    assert (document["result"], document["answeredAt"]) == ("not_found", "2026-12-01T10:00:03Z")
    assert read_answer(document).result is Result.NOT_FOUND


def test_an_expired_request_says_why_and_reads_back_expired() -> None:
    """expired: the reason; the client needs nothing else of it."""
    document = answer_document(View(status=RequestStatus.EXPIRED))
    assert document["reason"] == NOT_ANSWERED_IN_TIME
    assert read_answer(document).status is RequestStatus.EXPIRED


@pytest.mark.parametrize("document", [
    {}, {"requestId": "r-1", "status": "lost"}, {"requestId": "r-1", "status": "answered"},
    {"requestId": "r-1", "status": "pending", "receivedAt": "yesterday"}, [],
])
def test_what_is_not_an_answer_does_not_read(document: object) -> None:
    """A missing id, an unknown status, an answer without result or a bad time raise."""
    with pytest.raises((ValueError, KeyError, TypeError)):
        read_answer(document)
