"""``Retry-After`` (RFC 9110 section 10.2.3) as a number of seconds."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or HTTP-date), or None when absent or garbled.

    ``headers`` is looked up with the lower-case name, as httpx2's headers allow; a date in the
    past counts as 0.
    """
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
