"""What admission reads from the database: the deferred queue and the replicas' drain rates.

Rates are shared through the database rather than assumed from a replica count: each replica
renews its own measured rate (``publish``) with a validity of a few of its batch times, so a
replica added counts as soon as it answers, and a killed one stops counting once its row
lapses, with no setting to keep in step with the deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, select

from numident.operator.tables import PENDING
from numident.operator.tables import deferred_replicas as replicas
from numident.operator.tables import identification_requests as requests
from numident.storage.database import read_only, write_transaction
from numident.storage.dialect import upsert


@dataclass(frozen=True)
class Queue:
    pending: int
    """Every stored pending request."""
    in_time: int
    """Those whose deadline has not passed: the work ahead of a new request."""


def queue(engine: Engine, now: datetime) -> Queue:
    with read_only(engine) as conn:
        row = conn.execute(select(
            func.count(),
            func.count().filter(requests.c.answer_due > now),
        ).where(PENDING)).one()
    return Queue(int(row[0]), int(row[1]))


def publish(engine: Engine, replica_id: str, answers_per_second: float,
            valid_until: datetime) -> None:
    """Record this replica's measured rate, counted for admission until ``valid_until``."""
    with write_transaction(engine) as conn:
        statement = upsert(conn, replicas, ["replica_id"], ["answers_per_second",
                                                            "valid_until"])
        conn.execute(statement, {"replica_id": replica_id,
                                 "answers_per_second": answers_per_second,
                                 "valid_until": valid_until})
        # Rows of replicas gone for an hour are of no use to anyone.
        conn.execute(replicas.delete().where(
            replicas.c.valid_until < valid_until - timedelta(hours=1)))


def others(engine: Engine, replica_id: str, now: datetime) -> float:
    """The sum of the live rates of the other replicas."""
    with read_only(engine) as conn:
        total = conn.execute(select(func.sum(replicas.c.answers_per_second)).where(
            and_(replicas.c.replica_id != replica_id, replicas.c.valid_until > now))
        ).scalar_one()
    return float(total or 0.0)
