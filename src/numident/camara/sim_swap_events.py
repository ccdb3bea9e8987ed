"""SIM swap subscriptions as stored, and the CloudEvents they owe their sinks.

A subscription asks for ``org.camaraproject.sim-swap-subscriptions.v0.swapped`` events about
one line, POSTed to the organizer's sink with the subscription's sink credential. Every event
is an outbox message of kind :data:`OUTBOX_KIND`, written in the transaction that caused it,
and is therefore retried and dead-lettered like the gateway's notices:

* :func:`announce_swap` runs inside the transaction that records a ``sim_swapped`` lifecycle
  event, whatever the event's source (:data:`LIFECYCLE_HANDLERS`, which the composition
  root registers for the operator's lifecycle events): one
  ``swapped`` event per active subscription of the line. A subscription that reaches its
  ``subscriptionMaxEvents`` ends there with ``MAX_EVENTS_REACHED``.
* :func:`delete` (by the organizer: ``SUBSCRIPTION_DELETED``), :func:`sweep` (expiry time
  reached: ``SUBSCRIPTION_EXPIRED``; the sink token's expiry reached: ``ACCESS_TOKEN_EXPIRED``)
  and :func:`end_for_line` (the line's holder is gone: ``NETWORK_TERMINATED``) end a
  subscription and queue its ``subscription-ended`` event.

An ended subscription keeps its row, so that its last events still go out with its credential,
but the API no longer serves it. The credential's token is stored sealed
(:mod:`numident.sinks.tokens`). A subscription made with a three-legged token never has its
phone number shown back or put in an event (the spec's data minimisation).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, or_, select, update

from numident.camara.tables import sim_swap_subscriptions
from numident.core.clock import rfc3339
from numident.operator.events import LifecycleHandlers, LinesEnded, SimSwapped
from numident.operator.tables import organizers, outbox
from numident.outbox.store import OutboxMessage, enqueue
from numident.sinks.tokens import SinkTokenCipher
from numident.storage.database import read_only
from numident.storage.ids import new_id

SWAPPED = "org.camaraproject.sim-swap-subscriptions.v0.swapped"
ENDED = "org.camaraproject.sim-swap-subscriptions.v0.subscription-ended"
OUTBOX_KIND = "sim_swap_event"
SWEEP_BATCH = 500

t = sim_swap_subscriptions


class TerminationReason(StrEnum):
    MAX_EVENTS_REACHED = "MAX_EVENTS_REACHED"
    NETWORK_TERMINATED = "NETWORK_TERMINATED"
    SUBSCRIPTION_EXPIRED = "SUBSCRIPTION_EXPIRED"
    ACCESS_TOKEN_EXPIRED = "ACCESS_TOKEN_EXPIRED"  # noqa: S105 - a reason, not a secret
    SUBSCRIPTION_DELETED = "SUBSCRIPTION_DELETED"


DESCRIPTIONS = {
    TerminationReason.MAX_EVENTS_REACHED: "the maximum number of events has been sent",
    TerminationReason.NETWORK_TERMINATED: "the operator stopped the subscription",
    TerminationReason.SUBSCRIPTION_EXPIRED: "the subscription expire time has been reached",
    TerminationReason.ACCESS_TOKEN_EXPIRED: "the sink credential's access token has expired",
    TerminationReason.SUBSCRIPTION_DELETED: "the subscription was deleted by its owner",
}


@dataclass(frozen=True)
class NewSubscription:
    """What a valid creation request asks for."""

    organizer_id: int
    phone_number: str
    by_token: bool
    sink: str
    sink_token: str | None
    sink_token_expires_at: datetime | None
    expires_at: datetime | None
    max_events: int | None


@dataclass(frozen=True)
class Subscription:
    """An active subscription as the API shows it (never with its sink token)."""

    id: str
    phone_number: str
    by_token: bool
    sink: str
    starts_at: datetime
    expires_at: datetime | None
    max_events: int | None


_SHOWN = (t.c.id, t.c.phone_number, t.c.by_token, t.c.sink, t.c.starts_at, t.c.expires_at,
          t.c.max_events)


def _subscription(row: Any) -> Subscription:
    return Subscription(row.id, row.phone_number, row.by_token, row.sink, row.starts_at,
                        row.expires_at, row.max_events)


def create(engine: Engine, new: NewSubscription, now: datetime,
           cipher: SinkTokenCipher) -> Subscription:
    """Store ``new``, active from ``now``, its sink token sealed with ``cipher``."""
    subscription_id = new_id()
    sealed = None if new.sink_token is None else cipher.seal(subscription_id, new.sink_token)
    with engine.begin() as conn:
        conn.execute(t.insert().values(
            id=subscription_id, organizer_id=new.organizer_id, phone_number=new.phone_number,
            by_token=new.by_token, sink=new.sink, sink_token=sealed,
            sink_token_expires_at=new.sink_token_expires_at, starts_at=now,
            expires_at=new.expires_at, max_events=new.max_events, events_sent=0))
    return Subscription(subscription_id, new.phone_number, new.by_token, new.sink, now,
                        new.expires_at, new.max_events)


def _visible(organizer_id: int, phone_number: str | None) -> list[Any]:
    """The active subscriptions an organizer sees (only the token's line's, with a line)."""
    conditions: list[Any] = [t.c.organizer_id == organizer_id, t.c.ended_at.is_(None)]
    if phone_number is not None:
        conditions.append(t.c.phone_number == phone_number)
    return conditions


def find(engine: Engine, organizer_id: int, subscription_id: str,
         phone_number: str | None = None) -> Subscription | None:
    """The organizer's active subscription ``subscription_id`` (of ``phone_number``), or None."""
    with read_only(engine) as conn:
        row = conn.execute(select(*_SHOWN).where(
            t.c.id == subscription_id, *_visible(organizer_id, phone_number))).first()
    return None if row is None else _subscription(row)


def listing(engine: Engine, organizer_id: int,
            phone_number: str | None = None) -> list[Subscription]:
    """The organizer's active subscriptions (of ``phone_number``), oldest first."""
    with read_only(engine) as conn:
        rows = conn.execute(select(*_SHOWN).where(*_visible(organizer_id, phone_number))
                            .order_by(t.c.starts_at, t.c.id)).all()
    return [_subscription(r) for r in rows]


def all_active(engine: Engine, *, phone_number: str | None = None,
               organizer: str | None = None, limit: int = 1000
               ) -> list[tuple[str, Subscription]]:
    """Active subscriptions with their organizer's name, for the operator's staff."""
    query = (select(organizers.c.name, *_SHOWN)
             .join(organizers, organizers.c.id == t.c.organizer_id)
             .where(t.c.ended_at.is_(None)).order_by(t.c.starts_at, t.c.id).limit(limit))
    if phone_number is not None:
        query = query.where(t.c.phone_number == phone_number)
    if organizer is not None:
        query = query.where(organizers.c.name == organizer)
    with read_only(engine) as conn:
        return [(row.name, _subscription(row)) for row in conn.execute(query)]


def terminate(engine: Engine, subscription_id: str, now: datetime, source: str) -> bool:
    """The operator's staff end a subscription (``NETWORK_TERMINATED``); False if none such."""
    with engine.begin() as conn:
        row = conn.execute(_ending_query().where(t.c.id == subscription_id,
                                                 t.c.ended_at.is_(None))).first()
        message = None if row is None else _end(
            conn, row, TerminationReason.NETWORK_TERMINATED, now, now, source)
        if message is not None:
            enqueue(conn, outbox, [message])
    return message is not None


def delete(engine: Engine, organizer_id: int, subscription_id: str, phone_number: str | None,
           now: datetime, source: str) -> bool:
    """End the organizer's subscription as deleted; False when it has none such."""
    with engine.begin() as conn:
        row = conn.execute(_ending_query().where(
            t.c.id == subscription_id, *_visible(organizer_id, phone_number))).first()
        if row is None:
            return False
        message = _end(conn, row, TerminationReason.SUBSCRIPTION_DELETED, now, now, source)
        if message is not None:
            enqueue(conn, outbox, [message])
        return message is not None


def announce_swap(conn: Connection, phone_number: str, *, occurred_at: datetime,
                  recorded_at: datetime, source: str) -> int:
    """Queue a ``swapped`` event for each active subscription of the line; returns how many.

    Runs in the caller's transaction (the one recording the swap). Subscriptions past their
    expiry are not served even if the sweep has not ended them yet.
    """
    rows = conn.execute(_ending_query().where(
        t.c.phone_number == phone_number, t.c.ended_at.is_(None),
        or_(t.c.expires_at.is_(None), t.c.expires_at > recorded_at),
        or_(t.c.sink_token_expires_at.is_(None), t.c.sink_token_expires_at > recorded_at),
    ).order_by(t.c.starts_at, t.c.id)).all()
    messages: list[OutboxMessage] = []
    for row in rows:
        conn.execute(update(t).where(t.c.id == row.id).values(events_sent=t.c.events_sent + 1))
        messages.append(_message(row, SWAPPED, {}, occurred_at, recorded_at, source))
        if row.max_events is not None and row.events_sent + 1 >= row.max_events:
            ended = _end(conn, row, TerminationReason.MAX_EVENTS_REACHED, recorded_at,
                         recorded_at, source)
            if ended is not None:
                messages.append(ended)
    enqueue(conn, outbox, messages)
    return len(rows)


def on_sim_swapped(conn: Connection, event: SimSwapped) -> None:
    """The lifecycle handler: the swap is announced to every subscription of the line."""
    announce_swap(conn, event.phone_number, occurred_at=event.occurred_at,
                  recorded_at=event.recorded_at, source=event.source)


def on_lines_ended(conn: Connection, event: LinesEnded) -> None:
    """The lifecycle handler: the lines' subscriptions end (``NETWORK_TERMINATED``)."""
    end_for_lines(conn, event.numbers, occurred_at=event.occurred_at,
                  recorded_at=event.recorded_at, source=event.source)


LIFECYCLE_HANDLERS = LifecycleHandlers(sim_swapped=(on_sim_swapped,),
                                       lines_ended=(on_lines_ended,))
"""What SIM swap subscriptions do with the operator's lifecycle events."""


def end_for_line(conn: Connection, phone_number: str, *, occurred_at: datetime,
                 recorded_at: datetime, source: str) -> int:
    """End every active subscription of a line whose holder is gone (``NETWORK_TERMINATED``).

    Runs in the transaction recording the contract's end, a port-out, a reassignment or a
    change of holder: a subscription was asked about the line's holder of the time, and the
    next holder's SIM changes are none of its business.
    """
    return end_for_lines(conn, [phone_number], occurred_at=occurred_at,
                         recorded_at=recorded_at, source=source)


def end_for_lines(conn: Connection, numbers: Select[Any] | Sequence[str], *,
                  occurred_at: datetime, recorded_at: datetime, source: str) -> int:
    """:func:`end_for_line` for every line ``numbers`` selects, in one query."""
    rows = conn.execute(_ending_query().where(t.c.phone_number.in_(numbers),
                                              t.c.ended_at.is_(None))).all()
    messages = [m for row in rows if (m := _end(conn, row, TerminationReason.NETWORK_TERMINATED,
                                                occurred_at, recorded_at, source)) is not None]
    enqueue(conn, outbox, messages)
    return len(messages)


def sweep(engine: Engine, now: datetime, source: str) -> int:
    """End every subscription whose expiry (or sink token's) has passed; returns how many."""
    ended = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(_ending_query().where(
                t.c.ended_at.is_(None),
                or_(t.c.expires_at <= now, t.c.sink_token_expires_at <= now),
            ).order_by(t.c.id).limit(SWEEP_BATCH)).all()
            messages = []
            for row in rows:
                reason, at = _expiry(row, now)
                message = _end(conn, row, reason, at, now, source)
                if message is not None:
                    messages.append(message)
            enqueue(conn, outbox, messages)
        ended += len(messages)
        if len(rows) < SWEEP_BATCH:
            return ended


def sealed_sink_token(engine: Engine, subscription_id: str) -> tuple[bool, str | None]:
    """Whether the subscription exists, and its sink's access token as stored (sealed)."""
    with read_only(engine) as conn:
        row = conn.execute(select(t.c.sink_token).where(t.c.id == subscription_id)).first()
    return (False, None) if row is None else (True, row.sink_token)


def _expiry(row: Row[Any], now: datetime) -> tuple[TerminationReason, datetime]:
    """Why and when an expired subscription ended: the earlier of its two expiry times."""
    if row.expires_at is not None and row.expires_at <= now and (
            row.sink_token_expires_at is None or row.expires_at <= row.sink_token_expires_at):
        return TerminationReason.SUBSCRIPTION_EXPIRED, row.expires_at
    return TerminationReason.ACCESS_TOKEN_EXPIRED, row.sink_token_expires_at


def _ending_query() -> Any:
    """The subscription rows an event is written from, locked against a concurrent end."""
    return (select(t.c.id, t.c.phone_number, t.c.by_token, t.c.sink, t.c.max_events,
                   t.c.events_sent, t.c.expires_at, t.c.sink_token_expires_at,
                   organizers.c.name.label("organizer"))
            .join(organizers, organizers.c.id == t.c.organizer_id)
            .with_for_update(of=t))


def _end(conn: Connection, row: Row[Any], reason: TerminationReason, at: datetime,
         now: datetime, source: str) -> OutboxMessage | None:
    """Mark the subscription ended at ``at``; its ``subscription-ended`` event, or None if it
    had already ended (only one end is ever announced)."""
    changed = conn.execute(update(t).where(t.c.id == row.id, t.c.ended_at.is_(None))
                           .values(ended_at=at, termination_reason=reason.value)).rowcount
    if not changed:
        return None
    return _message(row, ENDED, {"terminationReason": reason.value,
                                 "terminationDescription": DESCRIPTIONS[reason]},
                    at, now, source)


def _message(row: Row[Any], kind: str, data: dict[str, str], time: datetime,
             created_at: datetime, source: str) -> OutboxMessage:
    """One CloudEvent (structured mode) for the subscription's sink."""
    event_id = new_id()
    shown = {} if row.by_token else {"phoneNumber": row.phone_number}
    document = {
        "id": event_id,
        "source": source,
        "type": kind,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "time": rfc3339(time),
        "data": {**shown, "subscriptionId": row.id, **data},
    }
    return OutboxMessage(id=event_id, kind=OUTBOX_KIND, owner=row.organizer,
                         destination=row.sink, content_type="application/cloudevents+json",
                         payload=json.dumps(document, separators=(",", ":")).encode(),
                         created_at=created_at)
