"""The gateway's service levels per organizer and UTC day, computed from the audit trail.

Every figure is read from the ``audit`` table, so that it can be checked against the regulator's
export of the same entries:

- ``requests``: ``request_received`` entries (one per item, batches included), by the day of
  receipt; ``answered_in_time``: those whose ``answered`` entry came within the 20-minute
  deadline of receipt; ``late``: those answered after it, ``request_expired``, or still without
  an answer past it; the rest (``open``) may still be answered in time;
- ``refused``: the items refused with 429 (rate limit, daily quota, or the deferred queue's
  capacity), the sum of the ``refused`` counts of ``limit_exceeded`` entries;
- ``answer_p50/p95/p99``: seconds from receipt to answer, of the requests answered;
- ``notices``: ``usage_invalidated`` and ``usage_at_risk`` entries (one notice each), by the day
  they were written; ``delivered_in_time``: those whose first ``notice_delivered`` entry came
  within 24 hours; ``dead_letters``: those with a ``notice_dead`` entry (even if staff requeued
  and delivered them later); ``delivery_p99``: seconds from writing to first delivery.

The work is done in the database, in one statement per section: the period's entries of a
request (or a notice) are grouped by its id, not joined (a join of two range scans would be a
nested loop on SQLite), then grouped per organizer and day with their counts and percentiles
(:mod:`numident.storage.reporting`); Python only merges the few rows per organizer and day.
``bench/bench_sla.py`` measures it on a filled table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, or_, select

from numident.core.identification import ANSWER_DEADLINE
from numident.errors import NotFound
from numident.operator.tables import audit, organizers
from numident.storage.database import read_only
from numident.storage.reporting import (
    as_date,
    grouped_figures,
    period_bounds,
    seconds_between,
    utc_day,
)

NOTICE_DEADLINE = timedelta(hours=24)
ANSWER_QUANTILES = (0.5, 0.95, 0.99)
_OUTCOME_LAG = timedelta(days=1)
"""Answers and expiries are read up to a day after the period: one written later is late
whatever it was, and no answer is written after the deadline."""


@dataclass(frozen=True)
class OrganizerDay:
    """One organizer's figures for one UTC day; times in seconds, None without values."""

    organizer: str
    day: date
    requests: int = 0
    answered_in_time: int = 0
    late: int = 0
    open: int = 0
    refused: int = 0
    answer_p50: float | None = None
    answer_p95: float | None = None
    answer_p99: float | None = None
    notices: int = 0
    delivered_in_time: int = 0
    dead_letters: int = 0
    delivery_p99: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def sla_report(engine: Engine, start: date, end: date, organizer: str | None = None, *,
               now: datetime, deadline: timedelta = ANSWER_DEADLINE) -> list[OrganizerDay]:
    """Figures per organizer and day from ``start`` to ``end`` (both included), ordered by
    organizer and day; days without any entry are absent.

    ``now`` decides which requests without an answer are late (their deadline has passed) and
    which are still open. Raises :class:`NotFound` (``ORGANIZER_NOT_FOUND``) for an
    ``organizer`` that is not registered.
    """
    low, high = period_bounds(start, end)
    figures: dict[tuple[str, date], dict[str, Any]] = {}

    def add(rows: Iterable[dict[str, Any]]) -> None:
        for values in rows:
            key = (values.pop("organizer"), as_date(values.pop("day")))
            figures.setdefault(key, {}).update(values)

    with read_only(engine) as conn:
        if conn.dialect.name == "postgresql":
            # A day's entries are grouped in memory: the default 4 MB would spill them to disk.
            conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        if organizer is not None and conn.execute(
                select(organizers.c.id).where(organizers.c.name == organizer)).first() is None:
            raise NotFound(f"no organizer {organizer}", code="ORGANIZER_NOT_FOUND")
        add(_requests(conn, low, high, organizer, now, deadline))
        add(_refused(conn, low, high, organizer))
        add(_notices(conn, low, high, organizer))
    return [OrganizerDay(organizer=name, day=day, **values)
            for (name, day), values in sorted(figures.items())]


def _entries(action: str | tuple[str, ...], low: datetime, high: datetime | None) -> Any:
    actions = (action,) if isinstance(action, str) else action
    condition = and_(audit.c.action.in_(actions), audit.c.at >= low)
    return condition if high is None else and_(condition, audit.c.at < high)


def _requests(conn: Connection, low: datetime, high: datetime, organizer: str | None,
              now: datetime, deadline: timedelta) -> list[dict[str, Any]]:
    # One row per request from its entries, grouped by request id rather than joined: a sort
    # or hash of the period's entries, where a join of two range scans would be a nested loop
    # on SQLite.
    t = audit.c
    entries = or_(_entries("request_received", low, high),
                  _entries(("answered", "request_expired"), low, high + _OUTCOME_LAG))
    if organizer is not None:
        entries = and_(entries, t.actor == organizer)
    per_request = (select(
        func.max(case((t.action == "request_received", t.actor))).label("organizer"),
        func.min(case((t.action == "request_received", t.at))).label("received_at"),
        func.min(case((t.action == "answered", t.at))).label("answered_at"),
        func.max(case((t.action == "request_expired", 1), else_=0)).label("expired"))
        .where(entries).group_by(t.request_id).subquery())
    r = per_request.c
    took = seconds_between(conn, r.received_at, r.answered_at)
    limit = deadline.total_seconds()
    late = case((took > limit, 1), (r.expired == 1, 1),
                (and_(r.answered_at.is_(None), r.received_at < now - deadline), 1), else_=0)
    requests = (select(r.organizer, utc_day(conn, r.received_at).label("day"),
                       took.label("seconds"),
                       case((took <= limit, 1), else_=0).label("in_time"), late.label("late"))
                .where(r.received_at.is_not(None)))
    rows = grouped_figures(conn, requests, ["organizer", "day"], "seconds", ANSWER_QUANTILES, {
        "requests": lambda c: func.count(),
        "answered_in_time": lambda c: func.sum(c.in_time),
        "late": lambda c: func.sum(c.late)})
    for row in rows:
        row["open"] = row["requests"] - row["answered_in_time"] - row["late"]
        row["answer_p50"], row["answer_p95"], row["answer_p99"] = row.pop("percentiles")
    return rows


def _refused(conn: Connection, low: datetime, high: datetime,
             organizer: str | None) -> list[dict[str, Any]]:
    day = utc_day(conn, audit.c.at)
    # Entries written before refusals were counted hold only the refusing request's items.
    counted = func.coalesce(audit.c.detail["refused"].as_integer(),
                            audit.c.detail["items"].as_integer(), 0)
    query = (select(audit.c.actor.label("organizer"), day.label("day"),
                    func.sum(counted).label("refused"))
             .where(_entries("limit_exceeded", low, high)).group_by(audit.c.actor, day))
    if organizer is not None:
        query = query.where(audit.c.actor == organizer)
    return [dict(r._mapping) for r in conn.execute(query)]


def _notices(conn: Connection, low: datetime, high: datetime,
             organizer: str | None) -> list[dict[str, Any]]:
    t = audit.c
    written = ("usage_invalidated", "usage_at_risk")
    # A notice's outcomes may come at any later time (a requeued dead letter): no upper bound.
    entries = or_(_entries(written, low, high),
                  _entries(("notice_delivered", "notice_dead"), low, None))
    recipient = t.detail["organizer"].as_string()
    if organizer is not None:
        entries = and_(entries, recipient == organizer)
    # Each entry's notice id is extracted once, then grouped per notice as requests are.
    noticed = select(t.detail["noticeId"].as_string().label("notice_id"),
                     recipient.label("organizer"), t.action, t.at).where(entries).subquery()
    e = noticed.c
    per_notice = (select(
        func.max(case((e.action.in_(written), e.organizer))).label("organizer"),
        func.min(case((e.action.in_(written), e.at))).label("written_at"),
        func.min(case((e.action == "notice_delivered", e.at))).label("delivered_at"),
        func.max(case((e.action == "notice_dead", 1), else_=0)).label("dead"))
        .group_by(e.notice_id).subquery())
    n = per_notice.c
    took = seconds_between(conn, n.written_at, n.delivered_at)
    notices = (select(n.organizer, utc_day(conn, n.written_at).label("day"),
                      took.label("seconds"),
                      case((took <= NOTICE_DEADLINE.total_seconds(), 1), else_=0)
                      .label("in_time"), n.dead)
               .where(n.written_at.is_not(None)))
    rows = grouped_figures(conn, notices, ["organizer", "day"], "seconds", (0.99,), {
        "notices": lambda c: func.count(),
        "delivered_in_time": lambda c: func.sum(c.in_time),
        "dead_letters": lambda c: func.sum(c.dead)})
    for row in rows:
        [row["delivery_p99"]] = row.pop("percentiles")
    return rows
