"""The figures the operator's console shows, read from the gateway's database.

Every figure is counted in SQL over the shared database, so a console on any replica shows the
traffic of all of them: requests per minute, the answer-time histogram per organizer (the
20-minute deadline is its last edge: a later answer is late), and the requests still pending
against their ``answerDue``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Float,
    case,
    extract,
    func,
    select,
)

from numident.operator.tables import PENDING, organizers
from numident.operator.tables import identification_requests as requests
from numident.storage.database import read_only

EDGES = (1.0, 10.0, 60.0, 300.0, 900.0)
"""The answer-time histogram's edges in seconds below the deadline, which is its last edge:
an answer past it is late."""


def _short(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"


def answer_buckets(deadline: float) -> tuple[list[float], list[str]]:
    """The histogram's upper edges (the deadline last) and the names of its bars, one more
    than the edges: the late answers."""
    edges = [e for e in EDGES if e < deadline] + [deadline]
    names = [f"< {_short(edges[0])}"]
    names += [f"{_short(low)}-{_short(high)}" for low, high in pairwise(edges)]
    return edges, [*names, f"late (> {_short(deadline)})"]


def _epoch(engine: Engine, column: Any) -> ColumnElement[float]:
    """Seconds since 1970 of a UtcDateTime column, on SQLite (naive UTC text) or PostgreSQL."""
    if engine.dialect.name == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return extract("epoch", column).cast(Float)


def _minute(engine: Engine, column: Any) -> ColumnElement[str]:
    """``YYYY-MM-DD HH:MM`` (UTC) of a UtcDateTime column: on SQLite a prefix of the stored
    text, so that counting a busy hour calls no date function per row."""
    if engine.dialect.name == "sqlite":
        return func.substr(column, 1, 16)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD HH24:MI")


@dataclass(frozen=True)
class Traffic:
    """One organizer's identification requests received in a window."""

    organizer: str
    per_minute: list[tuple[str, int]]
    """``(HH:MM, requests)`` for each minute of the last hour, oldest first."""
    answer_times: list[tuple[str, int]]
    """``(bucket, answers)`` over the histogram's buckets, late ones last."""
    received: int
    pending: int


def traffic(engine: Engine, now: datetime, *, minutes: int = 60,
            histogram_window: timedelta = timedelta(hours=1),
            deadline: float = 1200.0) -> list[Traffic]:
    """Requests per minute over the last ``minutes`` and answer times over
    ``histogram_window``, per organizer that has any (by name); ``deadline`` is the answer
    deadline in seconds (the histogram's last edge). Both read only the window's rows (by
    the index on ``received_at``): what is happening now; days are the SLA report's."""
    first = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    minute = _minute(engine, requests.c.received_at).label("minute")
    waited = (_epoch(engine, requests.c.answered_at)
              - _epoch(engine, requests.c.received_at))
    edges, bucket_names = answer_buckets(deadline)
    # An answer given on receipt has answered_at == received_at: the first case, decided
    # without computing a duration (most answers, unless the gateway defers them).
    bucket = case((requests.c.answered_at == requests.c.received_at, 0),
                  *((waited < edge, index) for index, edge in enumerate(edges)),
                  else_=len(edges)).label("bucket")
    # Grouped by time first: grouped by organizer first, SQLite would rather walk the
    # (organizer, ...) index through the whole table than the range of received_at.
    with read_only(engine) as conn:
        names = dict(conn.execute(select(organizers.c.id, organizers.c.name)).all())
        by_minute = conn.execute(
            select(requests.c.organizer_id, minute, func.count())
            .where(requests.c.received_at >= first, requests.c.received_at <= now)
            .group_by(minute, requests.c.organizer_id)).all()
        by_bucket = conn.execute(
            select(requests.c.organizer_id, bucket, func.count())
            .where(requests.c.received_at >= now - histogram_window,
                   requests.c.answered_at.is_not(None))
            .group_by(bucket, requests.c.organizer_id)).all()
        pending: dict[int, int] = dict(conn.execute(
            select(requests.c.organizer_id, func.count()).where(PENDING)
            .group_by(requests.c.organizer_id)).all())
    slots = [first + timedelta(minutes=i) for i in range(minutes)]
    index_of = {slot.strftime("%Y-%m-%d %H:%M"): i for i, slot in enumerate(slots)}
    labels = [slot.strftime("%H:%M") for slot in slots]
    counts: dict[int, list[int]] = {}
    for organizer_id, key, count in by_minute:
        if key in index_of:
            counts.setdefault(organizer_id, [0] * minutes)[index_of[key]] += int(count)
    times: dict[int, list[int]] = {}
    for organizer_id, index, count in by_bucket:
        times.setdefault(organizer_id, [0] * len(bucket_names))[int(index)] += int(count)
    found = set(counts) | set(times) | set(pending)
    return sorted((Traffic(names[o], list(zip(labels, counts.get(o, [0] * minutes),
                                              strict=True)),
                           list(zip(bucket_names, times.get(o, [0] * len(bucket_names)),
                                    strict=True)),
                           sum(counts.get(o, [])), pending.get(o, 0))
                   for o in found), key=lambda t: t.organizer)


@dataclass(frozen=True)
class PendingRequest:
    request_id: str
    organizer: str
    phone_number: str
    received_at: datetime
    answer_due: datetime
    left: timedelta


def pending_requests(engine: Engine, now: datetime, limit: int = 200
                     ) -> tuple[int, list[PendingRequest]]:
    """How many deferred requests are pending, and the ``limit`` nearest their deadline."""
    with read_only(engine) as conn:
        total = int(conn.execute(select(func.count()).where(PENDING)).scalar_one())
        rows = conn.execute(
            select(requests.c.request_id, organizers.c.name, requests.c.phone_number,
                   requests.c.received_at, requests.c.answer_due)
            .join(organizers, organizers.c.id == requests.c.organizer_id)
            .where(PENDING).order_by(requests.c.answer_due, requests.c.request_id)
            .limit(limit)).all()
    return total, [PendingRequest(r.request_id, r.name, r.phone_number, r.received_at,
                                  r.answer_due, r.answer_due - now) for r in rows]


def hidden(number: str) -> str:
    """``+79161234567`` -> ``+7916•••4567``: the country and area code and the last four
    digits, enough for staff to tell lines apart without reading a number out."""
    if len(number) <= 9:
        return number[:-4] + "•" * min(len(number), 4)
    return number[:5] + "•" * (len(number) - 9) + number[-4:]


def totals(rows: Sequence[Traffic]) -> dict[str, int]:
    return {"received": sum(t.received for t in rows), "pending": sum(t.pending for t in rows),
            "late": sum(t.answer_times[-1][1] for t in rows)}
