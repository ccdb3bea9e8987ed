"""Lifecycle events: what the registry learns, and the notices it owes each organizer.

An event updates the registry and, in the same transaction, invalidates every active usage
of the number (a SIM swap only puts them at risk) and writes one notice per affected usage to
the durable outbox. What else an event changes is not known here: the composition root
registers handlers for the domain events :class:`SimSwapped` and :class:`LinesEnded`
(:class:`LifecycleHandlers`), and they run in the event's transaction, on its connection (the
CAMARA SIM Swap subscriptions announce a swap and end with their line that way). An event
with an id already recorded changes nothing (events arrive again from NATS redeliveries and
retried admin calls).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, String, literal, select, update

from numident.core.notices import NoticeType
from numident.core.registry import change_for
from numident.errors import NotFound
from numident.operator import audit
from numident.operator.tables import (
    lifecycle_events,
    organizers,
    outbox,
    subscriber_history,
    subscribers,
    usages,
)
from numident.outbox.store import OutboxMessage, enqueue
from numident.storage.ids import new_id
from numident.wire.notice import CONTENT_TYPE, Notice, to_cloudevent

NOTICE_KIND = "notice"
"""The outbox kind of notices to organizers."""


@dataclass(frozen=True)
class SimSwapped:
    """The line's SIM was swapped (its usages are only put at risk)."""

    phone_number: str
    occurred_at: datetime
    recorded_at: datetime
    source: str
    """The gateway's notice source (its URL)."""


@dataclass(frozen=True)
class LinesEnded:
    """The holder's use of these lines ended (``numbers`` selects their ``phone_number``)."""

    numbers: Select[Any]
    occurred_at: datetime
    recorded_at: datetime
    source: str


@dataclass(frozen=True)
class LifecycleHandlers:
    """What other parts of the gateway do with a lifecycle event, in its transaction.

    Each handler gets the event's connection, so what it writes commits or rolls back with
    the event; one that raises rolls the whole event back. Built once, by the composition root.
    """

    sim_swapped: Sequence[Callable[[Connection, SimSwapped], None]] = ()
    lines_ended: Sequence[Callable[[Connection, LinesEnded], None]] = ()

    def swapped(self, conn: Connection, event: SimSwapped) -> None:
        for handler in self.sim_swapped:
            handler(conn, event)

    def ended(self, conn: Connection, event: LinesEnded) -> None:
        for handler in self.lines_ended:
            handler(conn, event)


NO_HANDLERS = LifecycleHandlers()
"""The registry's own consequences only (usages and their notices): for a registry that
serves no CAMARA subscriptions, such as a test's or a benchmark's."""


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    type: NoticeType
    phone_number: str
    notices: int
    duplicate: bool


def record_event(engine: Engine, kind: NoticeType, phone_number: str, *, occurred_at: datetime,
                 recorded_at: datetime, source: str, notice_source: str,
                 handlers: LifecycleHandlers, event_id: str | None = None,
                 new_contract_id: str | None = None) -> EventOutcome:
    """Apply one lifecycle event to the registry; return how many notices it queued.

    ``handlers`` has no default: an event recorded without the composition root's handlers
    (:func:`numident.operator.bootstrap.lifecycle_handlers`) would leave the SIM Swap
    subscriptions of its line unannounced and unended, so each caller says which it runs.

    ``phone_number`` must already be E.164. The number must be in the registry (an event about
    a number the operator never served is refused with :class:`NotFound`).
    """
    event_id = event_id or new_id()
    with engine.begin() as conn:
        if conn.execute(select(lifecycle_events.c.event_id)
                        .where(lifecycle_events.c.event_id == event_id)).first():
            return EventOutcome(event_id, kind, phone_number, 0, duplicate=True)
        current = conn.execute(select(subscribers.c.contract_id, subscribers.c.status)
                               .where(subscribers.c.phone_number == phone_number)).first()
        if current is None:
            raise NotFound(f"{phone_number} is not in the subscriber registry",
                           code="SUBSCRIBER_NOT_FOUND")
        conn.execute(lifecycle_events.insert().values(
            event_id=event_id, type=kind.value, phone_number=phone_number,
            occurred_at=occurred_at, recorded_at=recorded_at, source=source,
            new_contract_id=new_contract_id))
        changes = change_for(kind, occurred_at, new_contract_id).values()
        conn.execute(update(subscribers).where(subscribers.c.phone_number == phone_number)
                     .values(updated_at=recorded_at, **changes))
        conn.execute(subscriber_history.insert().values(
            phone_number=phone_number, contract_id=changes.get("contract_id", current.contract_id),
            status=changes.get("status", current.status), change=kind.value,
            occurred_at=occurred_at))
        audit.write(conn, [audit.entry(recorded_at, source, "event_recorded",
                                       phone_number=phone_number,
                                       detail={"type": kind.value, "eventId": event_id})])
        count = notify_usages(conn, kind, phone_number, occurred_at=occurred_at,
                              recorded_at=recorded_at, event_id=event_id, actor=source,
                              notice_source=notice_source, handlers=handlers)
    return EventOutcome(event_id, kind, phone_number, count, duplicate=False)


def notify_usages(conn: Connection, kind: NoticeType, phone_number: str, *,
                  occurred_at: datetime, recorded_at: datetime, event_id: str | None,
                  actor: str, notice_source: str,
                  handlers: LifecycleHandlers) -> int:
    """End (or flag) every active usage of ``phone_number`` and queue one notice for each.

    A SIM swap is also told to ``handlers`` as :class:`SimSwapped`, and an event that ends the
    holder's use of the number as :class:`LinesEnded`, in the same transaction; the count
    returned is of usage notices only.
    """
    if kind.invalidates_usage:
        return invalidate_usages(
            conn, select(literal(phone_number, String).label("phone_number"),
                         literal(kind.value, String).label("kind")),
            occurred_at=occurred_at, recorded_at=recorded_at, event_id=event_id, actor=actor,
            notice_source=notice_source, handlers=handlers)
    handlers.swapped(conn, SimSwapped(phone_number, occurred_at, recorded_at, notice_source))
    affected = conn.execute(
        select(usages.c.id, usages.c.identification_code, organizers.c.name,
               organizers.c.notice_url)
        .join(organizers, organizers.c.id == usages.c.organizer_id)
        .where(usages.c.phone_number == phone_number, usages.c.status == "active")
    ).all()
    return _queue_notices(conn, [(kind, phone_number, u.identification_code, u.name,
                                  u.notice_url) for u in affected],
                          occurred_at=occurred_at, recorded_at=recorded_at, event_id=event_id,
                          actor=actor, notice_source=notice_source)


def invalidate_usages(conn: Connection, changes: Select[str, str], *, occurred_at: datetime,
                      recorded_at: datetime, event_id: str | None, actor: str,
                      notice_source: str, handlers: LifecycleHandlers) -> int:
    """:func:`notify_usages` for many numbers at once, in a fixed number of statements.

    ``changes`` selects ``phone_number`` and ``kind`` (an invalidating :class:`NoticeType`
    value), one row per number. ``handlers`` are told the lines ended (:class:`LinesEnded`),
    every active usage of those numbers is ended with its number's kind as the reason, and
    one notice per ended usage is queued; the notices are exactly the usages the update ended
    (``RETURNING``), so a usage recorded concurrently is either ended and announced or left
    untouched.
    """
    numbers = changes.subquery("changes")
    handlers.ended(conn, LinesEnded(select(numbers.c.phone_number), occurred_at, recorded_at,
                                    notice_source))
    reason = (select(numbers.c.kind).where(numbers.c.phone_number == usages.c.phone_number)
              .scalar_subquery())
    ended = conn.execute(
        update(usages)
        .where(usages.c.status == "active",
               usages.c.phone_number.in_(select(numbers.c.phone_number)))
        .values(status="invalidated", ended_at=recorded_at, end_reason=reason)
        .returning(usages.c.organizer_id, usages.c.identification_code, usages.c.phone_number,
                   usages.c.end_reason)
    ).all()
    if not ended:
        return 0
    recipients = {row.id: row for row in conn.execute(
        select(organizers.c.id, organizers.c.name, organizers.c.notice_url)
        .where(organizers.c.id.in_({u.organizer_id for u in ended})))}
    return _queue_notices(conn, [
        (NoticeType(u.end_reason), u.phone_number, u.identification_code,
         recipients[u.organizer_id].name, recipients[u.organizer_id].notice_url)
        for u in sorted(ended, key=lambda u: (u.phone_number, u.organizer_id))],
        occurred_at=occurred_at, recorded_at=recorded_at, event_id=event_id, actor=actor,
        notice_source=notice_source)


Notified = tuple[NoticeType, str, str, str, str]
"""kind, phone number, identification code, organizer name, notice URL."""


def _queue_notices(conn: Connection, notified: Sequence[Notified], *, occurred_at: datetime,
                   recorded_at: datetime, event_id: str | None, actor: str,
                   notice_source: str) -> int:
    """Write one notice to the outbox and one audit entry per usage, in ``conn``'s transaction."""
    messages = []
    entries = []
    for kind, phone_number, code, organizer, notice_url in notified:
        notice_id = new_id()
        body = to_cloudevent(Notice(notice_id, kind, code, phone_number, occurred_at, event_id),
                             notice_source)
        messages.append(OutboxMessage(
            id=notice_id, kind=NOTICE_KIND, owner=organizer, destination=notice_url,
            content_type=CONTENT_TYPE, payload=body, created_at=recorded_at))
        entries.append(audit.entry(
            recorded_at, actor,
            "usage_invalidated" if kind.invalidates_usage else "usage_at_risk",
            phone_number=phone_number, identification_code=code,
            detail={"organizer": organizer, "noticeId": notice_id, "type": kind.value}))
    enqueue(conn, outbox, messages)
    audit.write(conn, entries)
    return len(messages)
