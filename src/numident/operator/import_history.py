"""The history of billing export imports: one row per import, loaded or refused.

The registry keeps only the current state of each line; staff asking "when was the last
export loaded, and what did it change?" read it here (the console's import page).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import Engine, select

from numident.operator.tables import import_runs
from numident.storage.database import read_only, write_transaction

LOADED, REFUSED = "loaded", "refused"


@dataclass(frozen=True)
class ImportCounts:
    """What an import did: rows read, inserted, updated, unchanged and rejected, notices queued."""

    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    notices: int = 0

    def counts(self) -> ImportCounts:
        """Just the counts (of a subclass's value)."""
        return ImportCounts(*(getattr(self, f.name) for f in fields(ImportCounts)))


@dataclass(frozen=True, kw_only=True)
class ImportRun(ImportCounts):
    started_at: datetime
    finished_at: datetime
    file_name: str
    outcome: str
    partial: bool
    problem: str | None = None


def record(engine: Engine, run: ImportRun) -> None:
    with write_transaction(engine) as conn:
        conn.execute(import_runs.insert().values(**vars(run)))


def recent(engine: Engine, limit: int = 50) -> list[ImportRun]:
    """The last ``limit`` imports, newest first."""
    t = import_runs
    with read_only(engine) as conn:
        rows = conn.execute(select(t).order_by(t.c.started_at.desc(), t.c.id.desc())
                            .limit(limit)).all()
    return [ImportRun(r.rows, r.inserted, r.updated, r.unchanged, r.rejected, r.notices,
                      started_at=r.started_at, finished_at=r.finished_at, file_name=r.file_name,
                      outcome=r.outcome, partial=r.partial, problem=r.problem)
            for r in rows]
