"""Identification use cases: accept a request, answer it, keep the usage record.

One code path answers single and batch requests: the answer, the usage record it implies and
the audit entries are written in one transaction (SPEC rule 4). On ``confirmed`` the usage of
(organizer, identification code, number) is recorded or refreshed and any other active usage
of the same code at this operator is withdrawn, because the user has moved to another number
(rule 6). On ``not_found`` no identification code is kept beyond the audit entry.

A request repeated while an earlier identical one is still pending returns that pending
request, so retries never queue the same work twice; once answered, a repeat is answered
afresh from the registry as it is now, and the usage record is refreshed, not duplicated.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Row,
    bindparam,
    case,
    func,
    select,
    tuple_,
    update,
)

from numident.core.identification import (
    ContractStatus,
    RequestStatus,
    Result,
    answer_due,
    answer_for,
)
from numident.errors import NotFound
from numident.operator import audit
from numident.operator.tables import identification_requests as requests
from numident.operator.tables import organizers, subscribers, usages
from numident.storage.database import read_only, write_transaction
from numident.storage.dialect import upsert


@dataclass(frozen=True)
class Organizer:
    id: int
    name: str


@dataclass(frozen=True)
class RequestView:
    request_id: str
    phone_number: str
    identification_code: str
    status: RequestStatus
    result: Result | None
    received_at: datetime
    answer_due: datetime
    answered_at: datetime | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> RequestView:
        return cls(row.request_id, row.phone_number, row.identification_code,
                   RequestStatus(row.status), Result(row.result) if row.result else None,
                   row.received_at, row.answer_due, row.answered_at)


@dataclass(frozen=True)
class Item:
    """One validated request: an E.164 number and a valid identification code."""

    phone_number: str
    identification_code: str


# Statements are built once: building them per request cost as much as running them.
_LOOKUP = select(subscribers.c.phone_number, subscribers.c.status).where(
    subscribers.c.phone_number.in_(bindparam("numbers", expanding=True)))
_ACTIVE_USAGES = select(usages.c.id, usages.c.phone_number, usages.c.identification_code).where(
    usages.c.organizer_id == bindparam("organizer"), usages.c.status == "active",
    usages.c.identification_code.in_(bindparam("codes", expanding=True)))
_UPSERTS: dict[str, Insert] = {}


def _usage_upsert(conn: Connection) -> Insert:
    """Record or refresh a usage: one confirmed again keeps its "since", an ended one restarts."""
    statement = _UPSERTS.get(conn.dialect.name)
    if statement is None:
        statement = upsert(conn, usages, ["organizer_id", "identification_code", "phone_number"],
                           ["status", "last_confirmed_at", "ended_at", "end_reason"],
                           lambda excluded: {"since": case(
                               (usages.c.status == "active", usages.c.since),
                               else_=excluded.since)})
        _UPSERTS[conn.dialect.name] = statement
    return statement


def lookup(conn: Connection, numbers: Sequence[str]) -> dict[str, ContractStatus]:
    """The contract status of each number that the registry holds."""
    rows = conn.execute(_LOOKUP, {"numbers": sorted(set(numbers))})
    return {r.phone_number: ContractStatus(r.status) for r in rows}


def answer_now(engine: Engine, organizer: Organizer, items: Sequence[Item],
               now: datetime, *, within: Callable[[Connection], None] | None = None
               ) -> list[RequestView]:
    """Receive and answer ``items`` at once, all in one transaction.

    ``within`` runs last in that transaction (the organizer's quota is counted there); an
    exception from it rolls everything back.
    """
    with write_transaction(engine) as conn:
        views = [_new(item, now) for item in items]
        statuses = lookup(conn, [i.phone_number for i in items])
        answered = [_answered(v, answer_for(statuses.get(v.phone_number)), now) for v in views]
        conn.execute(requests.insert(), [_row(v, organizer) for v in answered])
        audit.write(conn, [e for v in answered for e in _received_and_answered(organizer, v)])
        _record_usages(conn, organizer, [v for v in answered if v.result is Result.CONFIRMED],
                       now)
        if within is not None:
            within(conn)
    return answered


def accept_deferred(engine: Engine, organizer: Organizer, items: Sequence[Item],
                    now: datetime, *, within: Callable[[Connection], None] | None = None
                    ) -> list[RequestView]:
    """Queue ``items`` for a later answer; a repeat of a pending request returns it.

    ``within`` runs last in the transaction, as in :func:`answer_now`.
    """
    with engine.begin() as conn:
        pending = {
            (r.phone_number, r.identification_code): RequestView.from_row(r)
            for r in conn.execute(select(requests).where(
                requests.c.organizer_id == organizer.id,
                requests.c.status == RequestStatus.PENDING.value,
                tuple_(requests.c.phone_number, requests.c.identification_code).in_(
                    [(i.phone_number, i.identification_code) for i in items])))
        }
        views: list[RequestView] = []
        fresh: list[RequestView] = []
        for item in items:
            key = (item.phone_number, item.identification_code)
            if key not in pending:
                pending[key] = _new(item, now)
                fresh.append(pending[key])
            views.append(pending[key])
        if fresh:
            conn.execute(requests.insert(), [_row(v, organizer) for v in fresh])
            audit.write(conn, [audit.entry(now, organizer.name, "request_received",
                                           phone_number=v.phone_number,
                                           identification_code=v.identification_code,
                                           request_id=v.request_id) for v in fresh])
        if within is not None:
            within(conn)
    return views


def answer_pending(engine: Engine, request_ids: Sequence[str],
                   now: datetime) -> list[RequestView]:
    """Answer those of the given requests still pending, from the registry as it is now."""
    with engine.begin() as conn:
        rows = conn.execute(
            select(requests, requests.c.organizer_id)
            .where(requests.c.request_id.in_(request_ids),
                   requests.c.status == RequestStatus.PENDING.value)).all()
        statuses = lookup(conn, [r.phone_number for r in rows])
        answered: list[RequestView] = []
        for row in rows:
            view = _answered(RequestView.from_row(row),
                             answer_for(statuses.get(row.phone_number)), now)
            conn.execute(update(requests).where(requests.c.request_id == view.request_id)
                         .values(status=view.status.value, result=view.result,
                                 answered_at=now))
            organizer = Organizer(row.organizer_id, _organizer_name(conn, row.organizer_id))
            audit.write(conn, [_received_and_answered(organizer, view)[1]])
            if view.result is Result.CONFIRMED:
                _record_usages(conn, organizer, [view], now)
            answered.append(view)
    return answered


def due_pending(engine: Engine, limit: int) -> list[tuple[str, datetime]]:
    """Pending request ids with their deadlines, earliest deadline first."""
    with read_only(engine) as conn:
        return [(r.request_id, r.answer_due) for r in conn.execute(
            select(requests.c.request_id, requests.c.answer_due)
            .where(requests.c.status == RequestStatus.PENDING.value)
            .order_by(requests.c.answer_due).limit(limit))]


def count_pending(engine: Engine) -> int:
    with read_only(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(requests)
                                .where(requests.c.status == RequestStatus.PENDING.value))
                   .scalar_one())


def get(engine: Engine, organizer: Organizer, request_id: str) -> RequestView:
    """The organizer's own request; another organizer's request is reported as not found."""
    with read_only(engine) as conn:
        row = conn.execute(select(requests).where(
            requests.c.request_id == request_id,
            requests.c.organizer_id == organizer.id)).first()
    if row is None:
        raise NotFound(f"no identification request {request_id}", code="REQUEST_NOT_FOUND")
    return RequestView.from_row(row)


def withdraw(engine: Engine, organizer: Organizer, identification_code: str,
             now: datetime) -> int:
    """End the organizer's active usages of ``identification_code``; 0 when there were none."""
    with engine.begin() as conn:
        ended = conn.execute(
            select(usages.c.id, usages.c.phone_number).where(
                usages.c.organizer_id == organizer.id,
                usages.c.identification_code == identification_code,
                usages.c.status == "active")).all()
        if ended:
            _end(conn, [u.id for u in ended], now, "withdrawn", "withdrawn_by_organizer")
            audit.write(conn, [audit.entry(now, organizer.name, "usage_withdrawn",
                                           phone_number=u.phone_number,
                                           identification_code=identification_code)
                               for u in ended])
    return len(ended)


def _record_usages(conn: Connection, organizer: Organizer, confirmed: Sequence[RequestView],
                   now: datetime) -> None:
    if not confirmed:
        return
    codes = {v.identification_code: v.phone_number for v in confirmed}
    moved = conn.execute(_ACTIVE_USAGES, {"organizer": organizer.id,
                                          "codes": list(codes)}).all()
    stale = [u for u in moved if codes[u.identification_code] != u.phone_number]
    if stale:
        _end(conn, [u.id for u in stale], now, "withdrawn", "number_changed")
    conn.execute(_usage_upsert(conn), [
        {"organizer_id": organizer.id, "identification_code": v.identification_code,
         "phone_number": v.phone_number, "status": "active", "since": now,
         "last_confirmed_at": now, "ended_at": None, "end_reason": None}
        for v in confirmed])
    audit.write(conn, [
        *(audit.entry(now, organizer.name, "usage_recorded", phone_number=v.phone_number,
                      identification_code=v.identification_code, request_id=v.request_id)
          for v in confirmed),
        *(audit.entry(now, organizer.name, "usage_withdrawn", phone_number=u.phone_number,
                      identification_code=u.identification_code,
                      detail={"reason": "number_changed"}) for u in stale),
    ])


def _end(conn: Connection, ids: list[int], now: datetime, status: str, reason: str) -> None:
    conn.execute(update(usages).where(usages.c.id.in_(ids))
                 .values(status=status, ended_at=now, end_reason=reason))


def _organizer_name(conn: Connection, organizer_id: int) -> str:
    return str(conn.execute(select(organizers.c.name)
                            .where(organizers.c.id == organizer_id)).scalar_one())


def _new(item: Item, now: datetime) -> RequestView:
    return RequestView(str(uuid.uuid4()), item.phone_number, item.identification_code,
                       RequestStatus.PENDING, None, now, answer_due(now), None)


def _answered(view: RequestView, result: Result, now: datetime) -> RequestView:
    return RequestView(view.request_id, view.phone_number, view.identification_code,
                       RequestStatus.ANSWERED, result, view.received_at, view.answer_due, now)


def _row(view: RequestView, organizer: Organizer) -> dict[str, Any]:
    return {"request_id": view.request_id, "organizer_id": organizer.id,
            "phone_number": view.phone_number, "identification_code": view.identification_code,
            "status": view.status.value, "result": view.result.value if view.result else None,
            "received_at": view.received_at, "answer_due": view.answer_due,
            "answered_at": view.answered_at}


def _received_and_answered(organizer: Organizer, view: RequestView) -> list[dict[str, Any]]:
    # A not_found answer keeps no identification code beyond the request's own audit entry.
    return [
        audit.entry(view.received_at, organizer.name, "request_received",
                    phone_number=view.phone_number, request_id=view.request_id,
                    identification_code=view.identification_code),
        audit.entry(view.answered_at or view.received_at, organizer.name, "answered",
                    phone_number=view.phone_number, request_id=view.request_id,
                    identification_code=view.identification_code
                    if view.result is Result.CONFIRMED else None,
                    detail={"result": view.result.value if view.result else None}),
    ]
