"""The date check Number Recycling and KYC Tenure share: is a line's subscriber the same from a
day until now?

:func:`unchanged_since` refuses a day the registry cannot answer for (in the future or before
``operator.camara.history_starts``: 400 ``OUT_OF_RANGE``), picks the line as
:func:`numident.camara.common.subject` does, reads what the registry knows of it (404 when it
holds no such line) and decides by :func:`numident.camara.contract_history.subscriber_since`;
a history too short to tell is 400 ``OUT_OF_RANGE`` too.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from numident.camara.common import Caller, registry_line, subject
from numident.camara.contract_history import LineState, Record, Since, subscriber_since
from numident.camara.dates import check_answerable
from numident.errors import InvalidInput
from numident.operator.tables import subscriber_history
from numident.storage.database import read_only


def line_state(caller: Caller, number: str) -> LineState:
    """The registry's current row of ``number`` (404 if none) and, if its start is unknown,
    its history."""
    line = registry_line(caller.engine, number)
    records: list[Record] = []
    if line.activated_at is None:
        with read_only(caller.engine) as conn:
            records = [Record(r.occurred_at, r.change, r.contract_id, r.status)
                       for r in conn.execute(
                           select(subscriber_history.c.occurred_at, subscriber_history.c.change,
                                  subscriber_history.c.contract_id, subscriber_history.c.status)
                           .where(subscriber_history.c.phone_number == number))]
    return LineState(line.contract_id, line.status, line.activated_at, records)


def known(answer: Since, field: str) -> bool:
    """True for an unchanged subscriber, False for a changed one; 400 when unknown."""
    if answer is Since.UNKNOWN:
        raise InvalidInput(f"the operator's records of this line do not reach back to {field}",
                           code="OUT_OF_RANGE")
    return answer is Since.UNCHANGED


def unchanged_since(caller: Caller, given: str | None, day: date, field: str
                    ) -> tuple[str, bool]:
    """The line a check is about, and whether its subscriber is the same from ``day`` (the
    body's ``field``) until now; see the module docstring for the refusals, in their order."""
    check_answerable(day, field, today=caller.now().date(),
                     earliest=caller.settings.history_starts)
    number = subject(caller, given)
    return number, known(subscriber_since(line_state(caller, number), day), field)
