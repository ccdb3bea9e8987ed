"""The figures the messenger's console shows, read from the service's database.

Accounts by state, the identifications in flight per operator, the notices received and the
bulk identification's progress are counted in SQL, so every replica's console shows the
whole service; the operators' health is this process's own (:mod:`operator_health`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select

from numident.core.accounts import AccountState
from numident.messenger import bulk
from numident.messenger.tables import accounts, bulk_identifications, identification_attempts
from numident.messenger.tables import received_notices as notices
from numident.storage.database import read_only

OPEN = "open"
BULK_ANSWERED = ("identified", "refused", "unanswered", "reidentification_required")


def accounts_by_state(engine: Engine) -> list[tuple[str, int]]:
    """Every account state (in the order of the life cycle) and how many accounts are in it."""
    with read_only(engine) as conn:
        found: dict[str, int] = dict(conn.execute(select(accounts.c.state, func.count())
                                  .group_by(accounts.c.state)).all())
    return [(state.value, int(found.get(state.value, 0))) for state in AccountState]


@dataclass(frozen=True)
class InFlight:
    operator_inn: str
    operator: str
    open: int
    retrying: int
    """Of them, those whose last exchange failed (the gateway unreachable, 429, 5xx)."""
    oldest_started_at: datetime
    nearest_due: datetime


def in_flight(engine: Engine, names: Mapping[str, str]) -> list[InFlight]:
    """Open identification attempts per operator (by ИНН; ``names`` gives their names)."""
    a = identification_attempts
    with read_only(engine) as conn:
        rows = conn.execute(
            select(a.c.operator_inn, func.count(), func.sum(case((a.c.failures > 0, 1), else_=0)),
                   func.min(a.c.started_at), func.min(a.c.answer_due))
            .where(a.c.status == OPEN).group_by(a.c.operator_inn)
            .order_by(a.c.operator_inn)).all()
    return [InFlight(inn, names.get(inn) or inn, int(count), int(retrying or 0), oldest, due)
            for inn, count, retrying, oldest, due in rows]


@dataclass(frozen=True)
class ReceivedNotice:
    operator_inn: str
    event_id: str
    type: str
    phone_number: str | None
    occurred_at: datetime | None
    received_at: datetime
    accounts_affected: int


def received(engine: Engine, limit: int = 100) -> tuple[list[tuple[str, int]],
                                                         list[ReceivedNotice]]:
    """Notices received, counted by type, and the last ``limit`` of them, newest first."""
    with read_only(engine) as conn:
        by_type = conn.execute(select(notices.c.type, func.count()).group_by(notices.c.type)
                               .order_by(notices.c.type)).all()
        rows = conn.execute(select(notices).order_by(notices.c.received_at.desc(),
                                                     notices.c.event_id).limit(limit)).all()
    return ([(t, int(n)) for t, n in by_type],
            [ReceivedNotice(r.operator_inn, r.event_id, r.type, r.phone_number, r.occurred_at,
                            r.received_at, r.accounts_affected) for r in rows])


@dataclass(frozen=True)
class BulkProgress:
    operator_inn: str | None
    operator: str
    counts: dict[str, int]
    total: int

    @property
    def answered(self) -> int:
        return sum(self.counts.get(s, 0) for s in BULK_ANSWERED)

    @property
    def done(self) -> int:
        """Answered or skipped: nothing more to ask for these accounts."""
        return self.answered + self.counts.get(bulk.SKIPPED, 0)


BULK_STATUSES = (bulk.QUEUED, bulk.PENDING, *BULK_ANSWERED, bulk.SKIPPED)


def bulk_progress(engine: Engine) -> list[BulkProgress]:
    """The bulk identification's accounts per operator (None: no operator) and status."""
    b = bulk_identifications
    with read_only(engine) as conn:
        rows = conn.execute(select(b.c.operator_inn, func.max(b.c.operator_name), b.c.status,
                                   func.count()).group_by(b.c.operator_inn, b.c.status)).all()
    progress: dict[str | None, tuple[str, dict[str, int]]] = {}
    for inn, name, status, count in rows:
        label, counts = progress.setdefault(inn, (name or inn or "no operator", {}))
        counts[status] = int(count)
        if name and label == inn:
            progress[inn] = (name, counts)
    return [BulkProgress(inn, label, counts, sum(counts.values()))
            for inn, (label, counts) in sorted(progress.items(), key=lambda i: i[1][0])]
