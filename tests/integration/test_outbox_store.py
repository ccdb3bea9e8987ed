"""The SQL outbox on SQLite and PostgreSQL: transactional add, exclusive leases, recovery."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, timedelta, timezone

import pytest
from outbox_fixtures import T0, commit, message, outbox_fixture  # noqa: F401
from sqlalchemy import Connection, text

from numident.errors import Conflict
from numident.outbox import OutboxMessage, SqlOutbox
from numident.outbox.store import Settled, Settlement


def test_a_message_added_in_a_rolled_back_transaction_leaves_nothing(outbox: SqlOutbox) -> None:
    """The outbox shares the caller's fate: no event, no notice."""
    with outbox.engine.connect() as connection:
        transaction = connection.begin()
        outbox.add(connection, message(1))
        transaction.rollback()
    assert outbox.get("evt-00001") is None
    assert outbox.claim_due(T0 + timedelta(days=1), 10, 60) == []


def test_a_message_added_with_the_event_commits_with_it(outbox: SqlOutbox) -> None:
    """Written in the caller's transaction next to other work, it is stored exactly as given."""
    with outbox.engine.begin() as connection:
        connection.execute(text("SELECT 1"))  # stands for the event's own rows
        outbox.add(connection, message(1))
    record = outbox.get("evt-00001")
    assert record is not None
    assert (record.status, record.attempts, record.payload) == ("pending", 0, b'{"n": 1}')
    assert record.next_attempt_at == T0
    assert record.content_type == "application/json"
    assert record.kind == "notice"


def test_times_read_back_as_aware_utc_whatever_zone_they_were_written_in(
    outbox: SqlOutbox,
) -> None:
    """A +03:00 creation time comes back as the same instant in UTC."""
    moscow = timezone(timedelta(hours=3))
    commit(outbox, message(1, created_at=T0.astimezone(moscow)))
    record = outbox.get("evt-00001")
    assert record is not None
    assert record.created_at == T0
    assert record.created_at.tzinfo == UTC


def test_a_reused_event_id_is_a_conflict(outbox: SqlOutbox) -> None:
    """Event ids are unique: the second insert fails with Conflict, the first stays."""
    commit(outbox, message(1))
    with pytest.raises(Conflict):
        commit(outbox, message(1))
    assert outbox.counts()["pending"] == 1


def test_a_leased_row_is_not_claimed_again_until_its_lease_expires(outbox: SqlOutbox) -> None:
    """A second claimer gets nothing while the lease lasts; after it, the row comes back.

    This is the SIGKILL guarantee: a dispatcher that dies mid-send holds its rows only
    for the lease, then another one sends them.
    """
    commit(outbox, message(1))
    first = outbox.claim_due(T0, 10, lease_seconds=60)
    assert [r.id for r in first] == ["evt-00001"]
    assert first[0].attempts == 1
    assert first[0].lease_until == T0 + timedelta(seconds=60)
    assert outbox.claim_due(T0 + timedelta(seconds=59), 10, 60) == []
    again = outbox.claim_due(T0 + timedelta(seconds=60), 10, 60)
    assert [(r.id, r.attempts) for r in again] == [("evt-00001", 2)]


def test_only_due_pending_rows_are_claimed_oldest_first(outbox: SqlOutbox) -> None:
    """Future rows wait; delivered and dead rows are never claimed; the limit is honoured."""
    commit(outbox, *(message(n, created_at=T0 + timedelta(seconds=n)) for n in range(5)))
    commit(outbox, message(9, created_at=T0 + timedelta(hours=1)))
    outbox.mark_delivered("evt-00000", T0)
    outbox.mark_failed("evt-00001", T0, "gone", None)
    claimed = outbox.claim_due(T0 + timedelta(minutes=1), 2, 60)
    assert [r.id for r in claimed] == ["evt-00002", "evt-00003"]
    claimed = outbox.claim_due(T0 + timedelta(minutes=1), 10, 60)
    assert [r.id for r in claimed] == ["evt-00004"]


def test_concurrent_claimers_never_get_the_same_row(outbox: SqlOutbox) -> None:
    """Four threads claiming at once split 400 rows between them without overlap or loss."""
    workers = 4
    commit(outbox, *(message(n) for n in range(400)))
    claimed: list[list[str]] = [[] for _ in range(workers)]
    barrier = threading.Barrier(workers)

    def claim(index: int) -> None:
        barrier.wait()
        while batch := outbox.claim_due(T0, 7, 600):
            claimed[index].extend(r.id for r in batch)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [i for ids in claimed for i in ids]
    assert len(every) == 400
    assert set(every) == {message(n).id for n in range(400)}


def test_a_late_failure_report_cannot_undo_a_delivery(outbox: SqlOutbox) -> None:
    """Once delivered, a row stays delivered, whatever a slow replica reports afterwards."""
    commit(outbox, message(1))
    assert outbox.mark_delivered("evt-00001", T0)
    assert not outbox.mark_failed("evt-00001", T0, "timeout", T0 + timedelta(seconds=1))
    record = outbox.get("evt-00001")
    assert record is not None
    assert (record.status, record.delivered_at, record.last_error) == ("delivered", T0, None)


def test_errors_are_kept_truncated_to_1000_characters(outbox: SqlOutbox) -> None:
    """A receiver's long error page does not bloat the table."""
    commit(outbox, message(1))
    outbox.mark_failed("evt-00001", T0, "x" * 5000, T0 + timedelta(seconds=1))
    record = outbox.get("evt-00001")
    assert record is not None
    assert record.last_error == "x" * 1000
    assert record.next_attempt_at == T0 + timedelta(seconds=1)


def test_staff_requeue_dead_letters_one_or_all_of_an_owner(outbox: SqlOutbox) -> None:
    """Requeue makes dead letters pending and due now, with a fresh window and attempt count."""
    commit(outbox, message(1), message(2), message(3, owner="messenger-b"))
    for n in (1, 2, 3):
        outbox.claim_due(T0, 10, 60)
        outbox.mark_failed(f"evt-{n:05d}", T0, "HTTP 400", None)
    later = T0 + timedelta(days=2)
    assert outbox.requeue_dead("evt-00001", later) == 1
    assert outbox.requeue_dead(None, later, owner="messenger-b") == 1
    assert outbox.counts() == {"pending": 2, "relayed": 0, "delivered": 0, "dead": 1}
    record = outbox.get("evt-00003")
    assert record is not None
    assert (record.status, record.attempts, record.requeues) == ("pending", 0, 1)
    assert (record.requeued_at, record.retry_window_start, record.next_attempt_at) == (
        later, later, later,
    )
    assert outbox.requeue_dead(None, later) == 1
    assert outbox.requeue_dead(None, later) == 0


def test_listing_filters_by_status_and_owner_newest_first(outbox: SqlOutbox) -> None:
    """Staff see what they ask for, newest first, up to the limit."""
    commit(outbox, *(message(n, created_at=T0 + timedelta(seconds=n)) for n in range(4)))
    commit(outbox, message(7, owner="messenger-b"))
    outbox.mark_delivered("evt-00003", T0)
    assert [r.id for r in outbox.list(owner="messenger-a")] == [
        "evt-00003", "evt-00002", "evt-00001", "evt-00000",
    ]
    assert [r.id for r in outbox.list(status="pending", owner="messenger-a", limit=2)] == [
        "evt-00002", "evt-00001",
    ]
    assert [r.id for r in outbox.list(owner="messenger-b")] == ["evt-00007"]


def test_relayed_rows_leave_the_sql_dispatcher(outbox: SqlOutbox) -> None:
    """A row handed to JetStream is not claimed again, even after its lease."""
    commit(outbox, message(1), message(2))
    claimed = outbox.claim_due(T0, 10, 60, count_attempt=False)
    assert [r.attempts for r in claimed] == [0, 0]
    assert outbox.mark_relayed(["evt-00001"]) == 1
    assert [r.id for r in outbox.claim_due(T0 + timedelta(hours=1), 10, 60)] == ["evt-00002"]
    record = outbox.get("evt-00001")
    assert record is not None
    assert record.status == "relayed"


def test_an_empty_add_many_is_a_no_op(outbox: SqlOutbox) -> None:
    """Nothing to add writes nothing."""
    empty: list[OutboxMessage] = []
    commit(outbox, *empty)
    assert sum(outbox.counts().values()) == 0


def test_final_outcomes_are_reported_once_inside_the_settling_transaction(
    outbox: SqlOutbox,
) -> None:
    """A delivery and a dead letter reach ``on_settled`` once each, with the row's kind and
    owner; a retry and a late report on a settled row reach it not at all."""
    seen: list[tuple[str, str, str | None, int, bool]] = []

    def record(connection: Connection, settled: Sequence[Settled]) -> None:
        seen.extend((s.id, s.status, s.owner, s.attempts, connection.in_transaction())
                    for s in settled)

    hooked = SqlOutbox(outbox.engine, outbox.table, on_settled=record)
    for n in (1, 2, 3):
        commit(hooked, message(n))
    hooked.claim_due(T0, 10, 60)
    later = T0 + timedelta(seconds=5)
    assert hooked.settle([Settlement("evt-00001", later, delivered=True),
                          Settlement("evt-00002", later, False, "HTTP 400", None),
                          Settlement("evt-00003", later, False, "HTTP 503", later)]) == 3
    assert hooked.mark_delivered("evt-00001", later) is False
    assert seen == [("evt-00001", "delivered", "messenger-a", 1, True),
                    ("evt-00002", "dead", "messenger-a", 1, True)]
