"""The identification API's answer: the document the gateway sends for one request, and how
the client reads it back.

``{"requestId","phoneNumber","identificationCode","status","receivedAt","answerDue"}`` and, by
``status``: ``answered`` adds ``result`` (``confirmed``, ``not_found``) and ``answeredAt``;
``expired`` (not answered by ``answerDue``) adds ``reason``; ``pending`` adds nothing.
Times are RFC 3339 in UTC with a ``Z``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from numident.core.clock import parse_rfc3339, rfc3339
from numident.core.identification import NOT_ANSWERED_IN_TIME, RequestStatus, Result


class AnsweredRequest(Protocol):
    """What the gateway knows of one request (``numident.operator.identification.RequestView``)."""

    @property
    def request_id(self) -> str: ...
    @property
    def phone_number(self) -> str: ...
    @property
    def identification_code(self) -> str: ...
    @property
    def status(self) -> RequestStatus: ...
    @property
    def result(self) -> Result | None: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def answer_due(self) -> datetime: ...
    @property
    def answered_at(self) -> datetime | None: ...


def answer_document(view: AnsweredRequest) -> dict[str, Any]:
    """The answer to ``view`` as the gateway sends it."""
    shown: dict[str, Any] = {"requestId": view.request_id, "phoneNumber": view.phone_number,
                             "identificationCode": view.identification_code,
                             "receivedAt": rfc3339(view.received_at),
                             "answerDue": rfc3339(view.answer_due)}
    if view.status is RequestStatus.PENDING:
        shown["status"] = "pending"
    elif view.status is RequestStatus.EXPIRED:
        shown.update(status="expired", reason=NOT_ANSWERED_IN_TIME)
    else:
        shown.update(status="answered", result=str(view.result),
                     answeredAt=rfc3339(view.answered_at))
    return shown


@dataclass(frozen=True)
class ReadAnswer:
    """An answer document as the client reads it; ``result`` is None unless answered."""

    request_id: str
    status: RequestStatus
    result: Result | None
    received_at: datetime | None
    answer_due: datetime | None


def read_answer(document: Any) -> ReadAnswer:
    """The answer in a decoded JSON ``document``; ValueError, KeyError or TypeError when it is
    not one. An expired answer's times are not read (nothing is waited for any more)."""
    request_id = str(document["requestId"])
    status = RequestStatus(document.get("status"))
    if status is RequestStatus.EXPIRED:
        return ReadAnswer(request_id, status, None, None, None)
    result = Result(document["result"]) if status is RequestStatus.ANSWERED else None
    return ReadAnswer(request_id, status, result, _time(document.get("receivedAt")),
                      _time(document.get("answerDue")))


def _time(value: object) -> datetime | None:
    return parse_rfc3339(value) if isinstance(value, str) else None
