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

The work is done in the database (joins, grouping, percentiles, see
:mod:`numident.storage.reporting`), one indexed range scan per action; Python only merges the
few rows per organizer and day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, select

from numident.core.identification import ANSWER_DEADLINE
from numident.errors import NotFound
from numident.operator.tables import audit, organizers
from numident.storage.database import read_only
from numident.storage.reporting import (
    as_date,
    percentiles,
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
    received = select(audit.c.actor, audit.c.request_id, audit.c.at).where(
        _entries("request_received", low, high))
    if organizer is not None:
        received = received.where(audit.c.actor == organizer)
    received_cte = received.cte("received")
    outcome = select(audit.c.request_id, audit.c.action, audit.c.at).where(
        _entries(("answered", "request_expired"), low, high + _OUTCOME_LAG)).cte("outcome")
    answered = outcome.c.action == "answered"
    took = seconds_between(conn, received_cte.c.at, outcome.c.at)
    joined = received_cte.outerjoin(outcome, outcome.c.request_id == received_cte.c.request_id)
    day = utc_day(conn, received_cte.c.at)
    limit = deadline.total_seconds()
    in_time = and_(answered, took <= limit)
    unanswered_past = and_(outcome.c.action.is_(None), received_cte.c.at < now - deadline)
    counts = select(
        received_cte.c.actor.label("organizer"), day.label("day"),
        func.count().label("requests"),
        func.coalesce(func.sum(case((in_time, 1), else_=0)), 0).label("answered_in_time"),
        func.coalesce(func.sum(case(
            (and_(answered, took > limit), 1), (outcome.c.action == "request_expired", 1),
            (unanswered_past, 1), else_=0)), 0).label("late"),
    ).select_from(joined).group_by(received_cte.c.actor, day)
    rows = [dict(r._mapping) for r in conn.execute(counts)]
    for row in rows:
        row["open"] = row["requests"] - row["answered_in_time"] - row["late"]
    times = (select(received_cte.c.actor.label("organizer"), day.label("day"),
                    took.label("seconds"))
             .select_from(received_cte.join(outcome,
                                            outcome.c.request_id == received_cte.c.request_id))
             .where(answered))
    quantiles = percentiles(conn, times, ["organizer", "day"], "seconds", ANSWER_QUANTILES)
    for row in rows:
        p50, p95, p99 = quantiles.get((row["organizer"], row["day"]), (None, None, None))
        row.update(answer_p50=p50, answer_p95=p95, answer_p99=p99)
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
    recipient = audit.c.detail["organizer"].as_string()
    written = select(recipient.label("organizer"),
                     audit.c.detail["noticeId"].as_string().label("notice_id"),
                     audit.c.at).where(_entries(("usage_invalidated", "usage_at_risk"),
                                                low, high))
    if organizer is not None:
        written = written.where(recipient == organizer)
    written_cte = written.cte("written")
    # A notice's outcomes may come at any later time (a requeued dead letter): no upper bound.
    settled = select(audit.c.detail["noticeId"].as_string().label("notice_id"),
                     audit.c.action, audit.c.at).where(
        _entries(("notice_delivered", "notice_dead"), low, None)).subquery()
    outcomes = (select(settled.c.notice_id,
                       func.min(case((settled.c.action == "notice_delivered", settled.c.at)))
                       .label("delivered_at"),
                       func.max(case((settled.c.action == "notice_dead", 1), else_=0))
                       .label("dead"))
                .group_by(settled.c.notice_id)).cte("notice_outcome")
    joined = written_cte.outerjoin(outcomes, outcomes.c.notice_id == written_cte.c.notice_id)
    took = seconds_between(conn, written_cte.c.at, outcomes.c.delivered_at)
    day = utc_day(conn, written_cte.c.at)
    counts = select(
        written_cte.c.organizer, day.label("day"), func.count().label("notices"),
        func.coalesce(func.sum(case((took <= NOTICE_DEADLINE.total_seconds(), 1), else_=0)),
                      0).label("delivered_in_time"),
        func.coalesce(func.sum(outcomes.c.dead), 0).label("dead_letters"),
    ).select_from(joined).group_by(written_cte.c.organizer, day)
    rows = [dict(r._mapping) for r in conn.execute(counts)]
    times = (select(written_cte.c.organizer, day.label("day"), took.label("seconds"))
             .select_from(joined).where(outcomes.c.delivered_at.is_not(None)))
    quantiles = percentiles(conn, times, ["organizer", "day"], "seconds", (0.99,))
    for row in rows:
        row["delivery_p99"] = quantiles.get((row["organizer"], row["day"]), [None])[0]
    return rows
