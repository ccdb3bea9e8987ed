"""The history of billing export imports: one row per import, loaded or refused.

The registry keeps only the current state of each line; staff asking "when was the last
export loaded, and what did it change?" read it here (the console's import page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from numident.operator.tables import import_runs
from numident.storage.database import read_only, write_transaction

LOADED, REFUSED = "loaded", "refused"


@dataclass(frozen=True)
class ImportRun:
    started_at: datetime
    finished_at: datetime
    file_name: str
    outcome: str
    partial: bool
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    notices: int = 0
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
    return [ImportRun(r.started_at, r.finished_at, r.file_name, r.outcome, r.partial, r.rows,
                      r.inserted, r.updated, r.unchanged, r.rejected, r.notices, r.problem)
            for r in rows]
