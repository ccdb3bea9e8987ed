"""Timestamps on the wire: RFC 3339 in UTC with a Z out, any offset in, never a naive time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from numident.core.clock import parse_rfc3339, rfc3339


def test_an_instant_round_trips_through_its_text() -> None:
    """rfc3339 writes UTC with Z; parse_rfc3339 reads it back to the same instant."""
    moment = datetime(2026, 12, 1, 13, 30, 0, 250000, tzinfo=timezone(timedelta(hours=3)))
    assert rfc3339(moment) == "2026-12-01T10:30:00.250000Z"
    assert parse_rfc3339(rfc3339(moment)) == moment
    assert parse_rfc3339("2026-12-01T10:30:00Z").tzinfo is UTC


@pytest.mark.parametrize("text", ["2026-12-01T10:30:00", "2026-12-01 10:30", "soon"])
def test_text_without_a_zone_or_not_a_time_is_refused(text: str) -> None:
    """A naive or malformed time is a ValueError."""
    with pytest.raises(ValueError, match=r"time zone|isoformat"):
        parse_rfc3339(text)
