"""Identification use cases: accept a request, answer it, keep the usage record.

One code path answers single and batch requests: the answer, the usage record it implies and
the audit entries are written in one transaction (SPEC rule 4). On ``confirmed`` the usage of
(organizer, identification code, number) is recorded or refreshed and any other active usage
of the same code at this operator is withdrawn, because the user has moved to another number
(rule 6). On ``not_found`` no identification code is kept beyond the audit entry.

A request repeated while an earlier identical one is still pending returns that pending
request, so retries never queue the same work twice; once answered, a repeat is answered
afresh from the registry as it is now, and the usage record is refreshed, not duplicated.

Deferred requests may be served by several replicas on one database: each claims its work
under a lease, writes an answer only while the request is still pending (at most once), and
settles a request whose deadline has passed as ``expired`` instead of answering it late.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Row,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from numident.core import usages as usages_rule
from numident.core.clock import rfc3339
from numident.core.identification import (
    ANSWER_DEADLINE,
    ContractStatus,
    RequestStatus,
    Result,
    answer_due,
    answer_for,
)
from numident.errors import NotFound
from numident.operator import audit
from numident.operator.tables import PENDING, organizers, subscribers, usages
from numident.operator.tables import identification_requests as requests
from numident.storage.database import read_only, write_transaction
from numident.storage.dialect import conflict_insert, in_one_statement, per_dialect, upsert
from numident.storage.ids import new_id


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
    usages.c.organizer_id == bindparam("organizer"), usages.c.status == usages_rule.ACTIVE,
    usages.c.identification_code.in_(bindparam("codes", expanding=True)))
_REQUEST_INSERT = requests.insert()


@per_dialect
def _usage_upsert(conn: Connection) -> Insert:
    """Record or refresh a usage: one confirmed again keeps its "since", an ended one restarts."""
    return upsert(conn, usages, ["organizer_id", "identification_code", "phone_number"],
                  ["status", "last_confirmed_at", "ended_at", "end_reason"],
                  lambda excluded: {"since": case(
                      (usages.c.status == usages_rule.ACTIVE, usages.c.since),
                      else_=excluded.since)})


def lookup(conn: Connection, numbers: Sequence[str]) -> dict[str, ContractStatus]:
    """The contract status of each number that the registry holds."""
    rows = conn.execute(_LOOKUP, {"numbers": sorted(set(numbers))})
    return {r.phone_number: ContractStatus(r.status) for r in rows}


def answer_now(engine: Engine, organizer: Organizer, items: Sequence[Item], now: datetime,
               deadline: timedelta = ANSWER_DEADLINE, *,
               within: Callable[[Connection], None] | None = None) -> list[RequestView]:
    """Receive and answer ``items`` at once, all in one transaction.

    ``within`` runs last in that transaction (the organizer's quota is counted there); an
    exception from it rolls everything back.
    """
    with write_transaction(engine) as conn:
        answered = _answer(conn, organizer, [_new(item, now, deadline) for item in items], now)
        if within is not None:
            within(conn)
    return answered


@dataclass(frozen=True)
class Job:
    """One caller's items for :func:`answer_together`, received at ``received_at``;
    ``within`` runs in the transaction after they are written, as in :func:`answer_now`."""

    organizer: Organizer
    items: Sequence[Item]
    received_at: datetime
    within: Callable[[Connection], None] | None = None


def answer_together(engine: Engine, jobs: Sequence[Job], now: datetime,
                    deadline: timedelta = ANSWER_DEADLINE
                    ) -> list[list[RequestView] | Exception]:
    """Answer the jobs of several callers in one transaction (one commit for all of them).

    Each job comes out as its answers or as the exception that refused it: the jobs of one
    organizer are written together under a savepoint, and when that fails (a quota that one of
    them would pass, say) each is written again under a savepoint of its own, so a bad job
    fails alone and leaves nothing behind. Every answer is durable when this returns.
    """
    if len(jobs) == 1:  # alone in its round: its failure is the transaction's
        try:
            with write_transaction(engine) as conn:
                return [*_answer_jobs(conn, jobs, now, deadline)]
        except Exception as exc:  # the job's own outcome, as below
            return [exc]
    outcomes: list[list[RequestView] | Exception | None] = [None] * len(jobs)
    groups: dict[int, list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.organizer.id, []).append(index)
    with write_transaction(engine) as conn:
        for indexes in groups.values():
            attempts = [indexes] if len(indexes) == 1 else [indexes, *([i] for i in indexes)]
            for attempt in attempts:
                try:
                    with conn.begin_nested():
                        answers = _answer_jobs(conn, [jobs[i] for i in attempt], now, deadline)
                except Exception as exc:  # this attempt's jobs alone fail; see the docstring
                    if len(attempt) == 1:
                        outcomes[attempt[0]] = exc
                    continue
                for i, answered in zip(attempt, answers, strict=True):
                    outcomes[i] = answered
                if attempt is indexes:
                    break
    return [outcome if outcome is not None else [] for outcome in outcomes]


def _answer_jobs(conn: Connection, jobs: Sequence[Job], now: datetime,
                 deadline: timedelta) -> list[list[RequestView]]:
    """The jobs of one organizer, answered by one set of statements."""
    pending = [[_new(item, job.received_at, deadline) for item in job.items] for job in jobs]
    answered = iter(_answer(conn, jobs[0].organizer, [v for p in pending for v in p], now))
    answers = [[next(answered) for _ in p] for p in pending]
    for job in jobs:
        if job.within is not None:
            job.within(conn)
    return answers


def _answer(conn: Connection, organizer: Organizer, views: Sequence[RequestView],
            now: datetime) -> list[RequestView]:
    """Answer the received ``views`` from the registry and write what the answers imply."""
    statuses = lookup(conn, [v.phone_number for v in views])
    answered = [_answered(v, answer_for(statuses.get(v.phone_number)), now) for v in views]
    conn.execute(in_one_statement(conn, _REQUEST_INSERT, requests.c.request_id),
                 [_row(v, organizer) for v in answered])
    audit.write(conn, [e for v in answered for e in _received_and_answered(organizer, v)])
    _record_usages(conn, organizer, [v for v in answered if v.result is Result.CONFIRMED],
                   now)
    return answered


def accept_deferred(engine: Engine, organizer: Organizer, items: Sequence[Item], now: datetime,
                    deadline: timedelta = ANSWER_DEADLINE, *,
                    within: Callable[[Connection], None] | None = None) -> list[RequestView]:
    """Queue ``items`` for a later answer; a repeat of a pending request returns it.

    The database holds one pending request per (organizer, number, code): a repeat accepted
    at the same moment by another replica is not inserted beside it, and the one stored is
    returned instead. ``within`` runs last in the transaction, as in :func:`answer_now`.
    """
    with write_transaction(engine) as conn:
        keys = [(i.phone_number, i.identification_code) for i in items]
        pending = _pending_for(conn, organizer, keys)
        views: list[RequestView] = []
        fresh: dict[tuple[str, str], RequestView] = {}
        for item in items:
            key = (item.phone_number, item.identification_code)
            if key not in pending:
                pending[key] = fresh[key] = _new(item, now, deadline)
            views.append(pending[key])
        if fresh:
            inserted = set(conn.execute(
                _pending_insert(conn),
                [_row(v, organizer) for v in fresh.values()]).scalars())
            if len(inserted) < len(fresh):
                stored = _pending_for(conn, organizer, [k for k, v in fresh.items()
                                                        if v.request_id not in inserted])
                views = [stored.get((v.phone_number, v.identification_code), v)
                         if v.request_id not in inserted else v for v in views]
            audit.write(conn, [audit.entry(now, organizer.name, "request_received",
                                           phone_number=v.phone_number,
                                           identification_code=v.identification_code,
                                           request_id=v.request_id)
                               for v in fresh.values() if v.request_id in inserted])
        if within is not None:
            within(conn)
    return views


_PENDING_OF_NUMBERS = select(requests).where(
    requests.c.phone_number.in_(bindparam("numbers", expanding=True)),
    requests.c.organizer_id == bindparam("organizer"), PENDING)


def _pending_for(conn: Connection, organizer: Organizer,
                 keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], RequestView]:
    # Sought by number, the key's first column (a list of (number, code) pairs is an OR that
    # no index seeks); the few pending requests of those numbers under other codes are
    # dropped here.
    wanted = set(keys)
    rows = conn.execute(_PENDING_OF_NUMBERS, {"numbers": sorted({n for n, _ in wanted}),
                                              "organizer": organizer.id})
    return {key: RequestView.from_row(r) for r in rows
            if (key := (r.phone_number, r.identification_code)) in wanted}


@per_dialect
def _pending_insert(conn: Connection) -> Insert:
    """Insert pending requests, skipping one whose key is pending already; the ids inserted."""
    statement: Insert = conflict_insert(conn, requests).on_conflict_do_nothing(
        index_elements=["organizer_id", "phone_number", "identification_code"],
        # Spelled as in the index: PostgreSQL infers the index from the same literal predicate.
        index_where=text("status = 'pending'"))
    return statement.returning(requests.c.request_id)


def claim_pending(engine: Engine, limit: int, lease_seconds: float,
                  now: datetime) -> list[tuple[str, datetime]]:
    """Lease up to ``limit`` pending requests to this replica, earliest deadline first.

    Only requests that can still make their deadline are claimed: overdue ones are for
    ``expire_overdue``, so that they never delay work still in time. Returns (request id,
    deadline) pairs. A request leased to another replica is skipped until that lease expires,
    so a replica killed in the middle of its checks leaves its work to the others after
    ``lease_seconds``. On PostgreSQL the candidates are locked with ``FOR UPDATE
    SKIP LOCKED``, so concurrent claims never wait for each other nor take the same rows; on
    SQLite the write lock serialises claims.
    """
    candidates = (
        select(requests.c.request_id)
        .where(PENDING, requests.c.answer_due > now,
               or_(requests.c.lease_until.is_(None), requests.c.lease_until <= now))
        .order_by(requests.c.answer_due).limit(limit)
        .with_for_update(skip_locked=True))  # rendered on PostgreSQL only
    claim = (update(requests)
             .where(requests.c.request_id.in_(candidates.scalar_subquery()))
             .values(lease_until=now + timedelta(seconds=lease_seconds))
             .returning(requests.c.request_id, requests.c.answer_due))
    with write_transaction(engine) as conn:
        rows = conn.execute(claim).all()
    return sorted(((r.request_id, r.answer_due) for r in rows), key=lambda r: (r[1], r[0]))


def answer_pending(engine: Engine, request_ids: Sequence[str],
                   now: datetime) -> list[RequestView]:
    """Answer those of the given requests still pending, from the registry as it is now.

    An answer is written at most once: the update is conditional on the request being still
    pending, so when two replicas answer the same request (a lease that expired during a slow
    check) the second finds it answered and writes nothing, neither audit nor usage.
    """
    with write_transaction(engine) as conn:
        rows = conn.execute(
            select(requests, requests.c.organizer_id)
            .where(requests.c.request_id.in_(request_ids),
                   PENDING)).all()
        statuses = lookup(conn, [r.phone_number for r in rows])
        answered: list[RequestView] = []
        for row in rows:
            if row.answer_due <= now:  # an answer after the deadline would come too late
                answered.extend(_expire(conn, [row.request_id], now))
                continue
            view = _answered(RequestView.from_row(row),
                             answer_for(statuses.get(row.phone_number)), now)
            written = conn.execute(
                update(requests)
                .where(requests.c.request_id == view.request_id,
                       PENDING)
                .values(status=view.status.value, result=view.result, answered_at=now,
                        lease_until=None))
            if written.rowcount != 1:
                continue
            organizer = Organizer(row.organizer_id, _organizer_name(conn, row.organizer_id))
            audit.write(conn, [_received_and_answered(organizer, view)[1]])
            if view.result is Result.CONFIRMED:
                _record_usages(conn, organizer, [view], now)
            answered.append(view)
    return answered


def expire_overdue(engine: Engine, now: datetime) -> list[RequestView]:
    """Settle every pending request whose deadline has passed as not answered in time.

    This happens after downtime, or to a request whose check outlived its deadline. Such a
    request gets no answer (one after the deadline would arrive after the organizer has given
    up on it, SPEC rule 5) and keeps no identification code beyond its receipt's audit entry.
    """
    # Looked for in a snapshot first: most rounds find none and need not take the write lock.
    with read_only(engine) as conn:
        overdue = conn.execute(select(requests.c.request_id).where(
            PENDING,
            requests.c.answer_due <= now)).scalars().all()
    if not overdue:
        return []
    with write_transaction(engine) as conn:
        return _expire(conn, overdue, now)


def _expire(conn: Connection, request_ids: Sequence[str], now: datetime) -> list[RequestView]:
    # Conditional, like an answer: a request answered or expired by another replica meanwhile
    # is left alone, and only the rows this statement changed get an audit entry.
    rows = conn.execute(
        update(requests)
        .where(requests.c.request_id.in_(request_ids),
               PENDING)
        .values(status=RequestStatus.EXPIRED.value, lease_until=None)
        .returning(*requests.c)).all()
    names = {o.id: o.name for o in conn.execute(select(organizers.c.id, organizers.c.name)
                                                 .where(organizers.c.id.in_(
                                                     {r.organizer_id for r in rows})))}
    audit.write(conn, [audit.entry(now, names[r.organizer_id], "request_expired",
                                   phone_number=r.phone_number, request_id=r.request_id,
                                   detail={"answer_due": rfc3339(r.answer_due)})
                       for r in rows])
    return [RequestView.from_row(r) for r in rows]


def count_pending(engine: Engine) -> int:
    with read_only(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(requests)
                                .where(PENDING))
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
                usages.c.status == usages_rule.ACTIVE)).all()
        if ended:
            _end(conn, [u.id for u in ended], now, usages_rule.WITHDRAWN,
                 usages_rule.WITHDRAWN_BY_ORGANIZER)
            audit.write(conn, [audit.entry(now, organizer.name, "usage_withdrawn",
                                           phone_number=u.phone_number,
                                           identification_code=identification_code)
                               for u in ended])
    return len(ended)


def _record_usages(conn: Connection, organizer: Organizer, confirmed: Sequence[RequestView],
                   now: datetime) -> None:
    """Record the usages ``confirmed`` implies, as if each were confirmed in turn.

    The database keeps one active usage per (organizer, code). A confirmation on a new number
    ends the usage on the old one; when another transaction (a second replica) records the same
    code between our read and our write, the unique index refuses our row, and the round is
    run again on top of what that transaction committed.
    """
    for round_ in _rounds(confirmed):
        for attempt in range(_USAGE_ATTEMPTS):
            try:
                with conn.begin_nested():
                    _record_round(conn, organizer, round_, now)
                break
            except IntegrityError:
                if attempt == _USAGE_ATTEMPTS - 1:
                    raise


_USAGE_ATTEMPTS = 5


def _rounds(confirmed: Sequence[RequestView]) -> list[list[RequestView]]:
    """Split ``confirmed`` into rounds in which no code appears twice: round n holds the n-th
    confirmation of each code, in code order.

    Only a code's own confirmations must keep their order (codes are independent), and in
    code order two transactions recording the same usages (replicas, or a batch sent twice)
    first touch every code in one order: a later round touches only codes its transaction
    already holds, so on PostgreSQL they queue instead of deadlocking.
    """
    rounds: list[list[RequestView]] = []
    seen: dict[str, int] = {}
    for view in confirmed:
        n = seen.get(view.identification_code, 0)
        seen[view.identification_code] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(view)
    return [sorted(round_, key=lambda v: v.identification_code) for round_ in rounds]


def _record_round(conn: Connection, organizer: Organizer, confirmed: Sequence[RequestView],
                  now: datetime) -> None:
    codes = {v.identification_code: v.phone_number for v in confirmed}
    active = conn.execute(_ACTIVE_USAGES, {"organizer": organizer.id,
                                           "codes": list(codes)}).all()
    stale = usages_rule.after_confirmation(
        (usages_rule.ActiveUsage(u.id, u.identification_code, u.phone_number) for u in active),
        codes).withdraw
    if stale:
        _end(conn, [u.id for u in stale], now, usages_rule.WITHDRAWN,
             usages_rule.NUMBER_CHANGED)
    # In code order (see _rounds), each code once per round: one statement writes them all.
    conn.execute(in_one_statement(conn, _usage_upsert(conn), usages.c.id), [
        {"organizer_id": organizer.id, "identification_code": v.identification_code,
         "phone_number": v.phone_number, "status": usages_rule.ACTIVE, "since": now,
         "last_confirmed_at": now, "ended_at": None, "end_reason": None}
        for v in confirmed])
    audit.write(conn, [
        *(audit.entry(now, organizer.name, "usage_recorded", phone_number=v.phone_number,
                      identification_code=v.identification_code, request_id=v.request_id)
          for v in confirmed),
        *(audit.entry(now, organizer.name, "usage_withdrawn", phone_number=u.phone_number,
                      identification_code=u.identification_code,
                      detail={"reason": usages_rule.NUMBER_CHANGED}) for u in stale),
    ])


def _end(conn: Connection, ids: list[int], now: datetime, status: str, reason: str) -> None:
    conn.execute(update(usages).where(usages.c.id.in_(ids))
                 .values(status=status, ended_at=now, end_reason=reason))


def _organizer_name(conn: Connection, organizer_id: int) -> str:
    return str(conn.execute(select(organizers.c.name)
                            .where(organizers.c.id == organizer_id)).scalar_one())


def _new(item: Item, now: datetime, deadline: timedelta) -> RequestView:
    return RequestView(new_id(), item.phone_number, item.identification_code,
                       RequestStatus.PENDING, None, now, answer_due(now, deadline), None)


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
