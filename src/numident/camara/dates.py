"""The calendar dates of CAMARA request bodies, and the window a registry can answer for.

A body date is RFC 3339 ``full-date`` text (``YYYY-MM-DD``) and nothing else: JSON numbers,
date-times and other spellings are 400 ``INVALID_ARGUMENT``. :func:`check_answerable` refuses
days the registry cannot answer for (in the future, or before the history the operator keeps)
with 400 ``OUT_OF_RANGE``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from numident.errors import InvalidInput

FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
"""RFC 3339 ``full-date`` text, in the request bodies and in the billing export."""


def _full_date_text(value: Any) -> Any:
    if not isinstance(value, str) or not FULL_DATE.match(value):
        raise ValueError("must be a calendar date, YYYY-MM-DD")
    return value


CalendarDate = Annotated[date, BeforeValidator(_full_date_text),
                         Field(examples=["2024-10-31"])]


def check_answerable(day: date, field: str, *, today: date, earliest: date | None) -> None:
    """400 ``OUT_OF_RANGE`` unless ``earliest <= day <= today``."""
    if day > today:
        raise InvalidInput(f"{field} is in the future", code="OUT_OF_RANGE")
    if earliest is not None and day < earliest:
        raise InvalidInput(f"{field} is before {earliest.isoformat()}, the earliest date this "
                           "operator's records can answer for", code="OUT_OF_RANGE")
