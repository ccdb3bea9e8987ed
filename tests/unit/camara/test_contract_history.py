"""Number Recycling and KYC Tenure: has the line's subscriber changed since a day?"""

from __future__ import annotations

from datetime import UTC, date, datetime

from numident.camara.contract_history import LineState, Record, Since, subscriber_since


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_holder_since_before_the_day_is_unchanged_and_the_signing_day_counts() -> None:
    line = LineState("C-1", "active", at("2023-10-09T15:00"))
    assert subscriber_since(line, date(2023, 12, 22)) is Since.UNCHANGED
    assert subscriber_since(line, date(2023, 10, 9)) is Since.UNCHANGED
    assert subscriber_since(line, date(2023, 10, 8)) is Since.CHANGED


def test_a_holder_who_started_after_the_day_is_a_change() -> None:
    """Scenario 2 of the spec: A cancelled, B signed on 2024-09-21; asked about 2023-12-22."""
    line = LineState("C-B", "active", at("2024-09-21"))
    assert subscriber_since(line, date(2023, 12, 22)) is Since.CHANGED


def test_a_terminated_contract_has_no_subscriber() -> None:
    line = LineState("C-1", "terminated", at("2020-01-01"))
    assert subscriber_since(line, date(2023, 1, 1)) is Since.CHANGED


def test_suspension_is_no_change_of_subscriber() -> None:
    line = LineState("C-1", "suspended", at("2020-01-01"))
    assert subscriber_since(line, date(2023, 1, 1)) is Since.UNCHANGED


def test_unknown_start_is_decided_from_the_history() -> None:
    history = [Record(at("2022-01-01"), "import", "C-1", "active"),
               Record(at("2023-05-01"), "sim_swapped", "C-1", "active")]
    line = LineState("C-1", "active", None, history)
    assert subscriber_since(line, date(2022, 6, 1)) is Since.UNCHANGED
    assert subscriber_since(line, date(2021, 6, 1)) is Since.UNKNOWN


def test_another_contract_or_a_holder_change_after_the_day_is_a_change() -> None:
    reassigned = [Record(at("2022-01-01"), "import", "C-1", "active"),
                  Record(at("2023-01-01"), "number_reassigned", "C-2", "active")]
    assert subscriber_since(LineState("C-2", "active", None, reassigned),
                            date(2022, 6, 1)) is Since.CHANGED
    holder = [Record(at("2022-01-01"), "import", "C-1", "active"),
              Record(at("2023-01-01"), "holder_changed", "C-1", "active")]
    assert subscriber_since(LineState("C-1", "active", None, holder),
                            date(2022, 6, 1)) is Since.CHANGED


def test_no_contract_in_force_on_the_day_is_a_change() -> None:
    history = [Record(at("2022-01-01"), "import", "C-1", "terminated"),
               Record(at("2023-01-01"), "import", "C-1", "active")]
    assert subscriber_since(LineState("C-1", "active", None, history),
                            date(2022, 6, 1)) is Since.CHANGED
