"""Routing data in SQL: generation-switched full loads, increments, and index snapshots.

Every load holds the routing load lock (:mod:`numident.routing.lock`) from its first write to
its switch, so loads run one after the other, whichever process or host starts them; a load
that finds the lock held waits for it (bounded) and is then refused. Full loads write their
rows under a new generation, the lease's fence number, in chunks (each its own short
transaction, so the messenger's other writers are never held up for long) and then switch the
active generation in one transaction; the old generation is deleted afterwards. Rows of a load
that died half-way belong to no active generation and are removed by the next load.

An increment is applied, in one transaction, to the generation that is active when it holds
the lock: one that arrives during a full load waits for it and lands on top of the new
snapshot, so an increment that reported success is active until a later full load replaces
the ports. A full load is refused when it would shrink the active data by more than the
allowed share (``Guard.max_shrink``) unless the shrink is allowed: a cut or partial snapshot
must not pass for the truth.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    delete,
    func,
    insert,
    select,
    true,
    update,
)

from numident.errors import FileProblem, InvalidFile
from numident.routing.files import WHOLE_FILE, refuse_empty
from numident.routing.index import Operator, RouterIndex
from numident.routing.lock import Lease, LoadLock, Waiting
from numident.routing.plan import Plan
from numident.routing.ports import NO_TIME, PortRows
from numident.routing.tables import (
    routing_aliases,
    routing_datasets,
    routing_operators,
    routing_plan,
    routing_ports,
)
from numident.storage.database import read_only
from numident.storage.dialect import driver_sql, upsert

DatasetKind = Literal["plan", "ports"]
CHUNK = 200_000
Progress = Callable[[int], None]
Hook = Callable[[], None]


@dataclass(frozen=True)
class Guard:
    """How a load meets other loads and the active data."""

    max_shrink: float = 0.10
    """The share of the active data a full load may lose (rows of ports, numbers of the plan)."""
    allow_shrink: bool = False
    wait_seconds: float = 300.0
    """How long a load waits for a running one before it is refused."""
    waiting: Waiting | None = None
    before_switch: Hook | None = None
    """Called when a load's rows are written, before they are switched on (under the lock)."""


class SqlRoutingStore:
    def __init__(self, engine: Engine, *, lease_seconds: float = 60.0) -> None:
        self.engine = engine
        self.lock = LoadLock(engine, lease_seconds=lease_seconds)

    def versions(self) -> tuple[int, int]:
        """(plan version, ports version); (0, 0) before anything was loaded."""
        with read_only(self.engine) as conn:
            found = {r.kind: r.version for r in conn.execute(
                select(routing_datasets.c.kind, routing_datasets.c.version))}
        return found.get("plan", 0), found.get("ports", 0)

    def aliases(self) -> dict[str, str]:
        with read_only(self.engine) as conn:
            pairs = [(r.alias, r.inn) for r in conn.execute(select(routing_aliases))]
            inns = conn.execute(select(routing_operators.c.inn)).scalars().all()
        return {**{f"inn:{inn}": inn for inn in inns}, **dict(pairs)}

    def save_aliases(self, aliases: Mapping[str, str]) -> None:
        if aliases:
            with self.engine.begin() as conn:
                conn.execute(upsert(conn, routing_aliases, ["alias"], ["inn"]),
                             [{"alias": a, "inn": inn} for a, inn in aliases.items()])

    def load_plan(self, plan: Plan, source: str, now: datetime,
                  guard: Guard = Guard()) -> int:
        """Replace the numbering plan in one transaction; returns the new generation."""
        refuse_empty(source, len(plan.ranges))
        with self._locked(f"numbering plan load of {source}", guard) as lease, \
                self.engine.begin() as conn:
            self.lock.renew(conn, lease)
            active = self._active(conn, "plan")
            if active is not None and not guard.allow_shrink:
                _refuse_plan_shrink(conn, active, plan, source, guard.max_shrink)
            ids = self._operator_ids(conn, plan.names)
            generation = lease.fence
            conn.execute(delete(routing_plan).where(_other_than(routing_plan, active)))
            conn.execute(insert(routing_plan), [
                {"generation": generation, "first": r.start, "last": r.end,
                 "operator_id": ids[r.inn], "region": r.region} for r in plan.ranges])
            if guard.before_switch is not None:
                guard.before_switch()
            self._switch(conn, "plan", generation, source, len(plan.ranges), now)
            conn.execute(delete(routing_plan).where(routing_plan.c.generation != generation))
        return generation

    def load_ports(self, rows: PortRows, source: str, now: datetime,
                   progress: Progress | None = None, guard: Guard = Guard()) -> int:
        """Replace all ported numbers by ``rows``; readers switch at the very end.

        An empty ``rows`` is refused: no snapshot of the national database is empty.
        """
        refuse_empty(source, len(rows))
        with self._locked(f"ports full load of {source}", guard) as lease:
            generation = lease.fence
            with self.engine.begin() as conn:
                self.lock.renew(conn, lease)
                active = self._active_rows(conn, "ports")
                if active and not guard.allow_shrink and \
                        len(rows) < active * (1 - guard.max_shrink):
                    raise _shrinks(source, f"would shrink the active ports from {active} to "
                                   f"{len(rows)} numbers", active - len(rows), active,
                                   guard.max_shrink)
                ids = self._operator_ids(conn, {inn: inn for inn in rows.inns},
                                         keep_names=True)
                conn.execute(delete(routing_ports).where(
                    _other_than(routing_ports, self._active(conn, "ports"))))
            codes = np.array([ids[inn] for inn in rows.inns], dtype=np.int32)
            self._insert_ports(lease, rows, codes, progress)
            if guard.before_switch is not None:
                guard.before_switch()
            with self.engine.begin() as conn:
                self.lock.renew(conn, lease)
                self._switch(conn, "ports", generation, source, len(rows), now)
            with self.engine.begin() as conn:
                conn.execute(delete(routing_ports).where(
                    routing_ports.c.generation != generation))
        return generation

    def apply_increment(self, rows: PortRows, source: str, now: datetime,
                        guard: Guard = Guard()) -> int:
        """Apply changed ports, in one transaction, to the generation active when it commits."""
        with self._locked(f"ports increment of {source}", guard) as lease, \
                self.engine.begin() as conn:
            self.lock.renew(conn, lease)
            ids = self._operator_ids(conn, {inn: inn for inn in rows.inns}, keep_names=True)
            generation = self._active(conn, "ports")
            if generation is None:
                generation = lease.fence
            numbers = rows.numbers.tolist()
            for start in range(0, len(numbers), 10_000):
                conn.execute(delete(routing_ports).where(
                    routing_ports.c.generation == generation,
                    routing_ports.c.number.in_(numbers[start:start + 10_000])))
            if numbers:
                conn.execute(insert(routing_ports), list(_port_dicts(generation, rows, ids)))
            if guard.before_switch is not None:
                guard.before_switch()
            total = conn.execute(select(func.count()).select_from(routing_ports).where(
                routing_ports.c.generation == generation)).scalar_one()
            self._switch(conn, "ports", generation, source, int(total), now)
        return generation

    @contextmanager
    def _locked(self, purpose: str, guard: Guard) -> Iterator[Lease]:
        lease = self.lock.acquire(purpose, wait_seconds=guard.wait_seconds,
                                  waiting=guard.waiting)
        try:
            yield lease
        finally:
            self.lock.release(lease)

    def _active_rows(self, conn: Connection, kind: DatasetKind) -> int:
        found = conn.execute(select(routing_datasets.c.rows)
                             .where(routing_datasets.c.kind == kind)).scalar_one_or_none()
        return int(found or 0)

    def snapshot(self) -> RouterIndex:
        """The active plan and ports as an index, read from one snapshot."""
        with read_only(self.engine) as conn:
            operators = conn.execute(select(routing_operators.c.id, routing_operators.c.inn,
                                            routing_operators.c.name)
                                     .order_by(routing_operators.c.id)).all()
            position = {row.id: i for i, row in enumerate(operators)}
            plan_generation = self._active(conn, "plan")
            ranges = conn.execute(
                select(routing_plan.c.first, routing_plan.c.last, routing_plan.c.operator_id,
                       routing_plan.c.region)
                .where(routing_plan.c.generation == plan_generation)
                .order_by(routing_plan.c.first)).all()
            regions: dict[str, int] = {}
            region_of = [regions.setdefault(r.region, len(regions)) for r in ranges]
            ported, ported_ops = self._read_ports(conn, self._active(conn, "ports"), position)
        return RouterIndex(
            operators=[Operator(r.inn, r.name) for r in operators], regions=list(regions),
            starts=np.array([r.first for r in ranges], dtype=np.int64),
            ends=np.array([r.last for r in ranges], dtype=np.int64),
            range_operators=np.array([position[r.operator_id] for r in ranges], dtype=np.int32),
            range_regions=np.array(region_of, dtype=np.int32),
            ported=ported, ported_operators=ported_ops)

    def _read_ports(self, conn: Connection, generation: int | None,
                    position: Mapping[int, int]) -> tuple[Any, Any]:
        """The active ports as (numbers, operator positions), sorted by number.

        Read through the driver's cursor into arrays sized up front: building numpy arrays
        from result rows costs tens of microseconds a row, which at 20 million rows is the
        difference between a minute and a quarter of an hour.
        """
        if generation is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32)
        total = conn.execute(select(func.count()).select_from(routing_ports)
                             .where(routing_ports.c.generation == generation)).scalar_one()
        numbers = np.empty(total, dtype=np.int64)
        operator_ids = np.empty(total, dtype=np.int64)
        query = driver_sql(conn, _READ_PORTS)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(query, (generation,))
            filled = 0
            while rows := cursor.fetchmany(CHUNK):
                block = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64,
                                    count=2 * len(rows)).reshape(-1, 2)
                numbers[filled:filled + len(rows)] = block[:, 0]
                operator_ids[filled:filled + len(rows)] = block[:, 1]
                filled += len(rows)
        finally:
            cursor.close()
        lookup = np.zeros(max(position, default=0) + 1, dtype=np.int32)
        for operator_id, index in position.items():
            lookup[operator_id] = index
        return numbers[:filled], lookup[operator_ids[:filled]]

    def _insert_ports(self, lease: Lease, rows: PortRows, codes: Any,
                      progress: Progress | None) -> None:
        generation = lease.fence
        order = np.argsort(rows.numbers, kind="stable")
        for start in range(0, len(rows), CHUNK):
            part = order[start:start + CHUNK]
            batch = zip([generation] * len(part), rows.numbers[part].tolist(),
                        codes[rows.operators[part]].tolist(),
                        [None if t == NO_TIME else t for t in rows.ported_at[part].tolist()],
                        strict=True)
            with self.engine.begin() as conn:
                self.lock.renew(conn, lease)
                _copy_or_insert(conn, batch)
            if progress is not None:
                progress(len(part))

    def _operator_ids(self, conn: Connection, names: Mapping[str, str], *,
                      keep_names: bool = False) -> dict[str, int]:
        """Ids of the operators by ИНН, creating (or renaming, for a plan) as needed."""
        existing = {r.inn: r.id for r in conn.execute(select(routing_operators))}
        for inn, name in names.items():
            if inn not in existing:
                existing[inn] = conn.execute(insert(routing_operators).values(
                    inn=inn, name=name).returning(routing_operators.c.id)).scalar_one()
            elif not keep_names:
                conn.execute(update(routing_operators).where(routing_operators.c.inn == inn)
                             .values(name=name))
        return existing

    def _active(self, conn: Connection, kind: DatasetKind) -> int | None:
        return conn.execute(select(routing_datasets.c.generation)
                            .where(routing_datasets.c.kind == kind)).scalar_one_or_none()

    def _switch(self, conn: Connection, kind: DatasetKind, generation: int, source: str,
                rows: int, now: datetime) -> None:
        values = {"generation": generation, "source": source, "rows": rows, "loaded_at": now}
        changed = conn.execute(update(routing_datasets).where(routing_datasets.c.kind == kind)
                               .values(version=routing_datasets.c.version + 1, **values))
        if changed.rowcount == 0:
            conn.execute(insert(routing_datasets).values(kind=kind, version=1, **values))


def _other_than(table: Table, generation: int | None) -> ColumnElement[bool]:
    """Rows of any generation but ``generation`` (all rows when there is none)."""
    return true() if generation is None else table.c.generation != generation


def _refuse_plan_shrink(conn: Connection, active: int, plan: Plan, source: str,
                        max_shrink: float) -> None:
    """Refuse a plan that would stop routing more than ``max_shrink`` of the numbers the
    active plan routes. Counted in numbers, not rows, so that ranges split or merged by the
    registry do not count as lost."""
    old = conn.execute(select(routing_plan.c.first, routing_plan.c.last)
                       .where(routing_plan.c.generation == active)
                       .order_by(routing_plan.c.first)).all()
    covered = sum(last - first + 1 for first, last in old)
    kept = _overlap([(r.first, r.last) for r in old], [(r.start, r.end) for r in plan.ranges])
    if covered and covered - kept > covered * max_shrink:
        raise _shrinks(source, f"would no longer route {covered - kept} of the {covered} "
                       "numbers of the active plan", covered - kept, covered, max_shrink)


def _overlap(first: Sequence[tuple[int, int]], second: Sequence[tuple[int, int]]) -> int:
    """How many numbers two sorted lists of disjoint inclusive ranges have in common."""
    total, i, j = 0, 0, 0
    while i < len(first) and j < len(second):
        low, high = max(first[i][0], second[j][0]), min(first[i][1], second[j][1])
        total += max(0, high - low + 1)
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return total


def _shrinks(source: str, what: str, lost: int, active: int, max_shrink: float) -> InvalidFile:
    return InvalidFile(source, [FileProblem(1, WHOLE_FILE, (
        f"{what} ({lost / active:.1%}, more than the {max_shrink:.0%} allowed by "
        "messenger.routing.max_shrink_percent): a cut or partial file? If the data really "
        "shrank, load it again with --allow-shrink"))])


_READ_PORTS = "SELECT number, operator_id FROM routing_ports WHERE generation = ? ORDER BY number"


def _port_dicts(generation: int, rows: PortRows,
                ids: Mapping[str, int]) -> Iterable[dict[str, Any]]:
    for number, code, when in zip(rows.numbers.tolist(), rows.operators.tolist(),
                                  rows.ported_at.tolist(), strict=True):
        yield {"generation": generation, "number": number, "operator_id": ids[rows.inns[code]],
               "ported_at": None if when == NO_TIME else when}


def _copy_or_insert(conn: Connection, batch: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL's COPY for big loads; SQLite's executemany inside the same transaction."""
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy("COPY routing_ports (generation, number, operator_id, ported_at) "
                         "FROM STDIN") as copy:
            for row in batch:
                copy.write_row(row)
        return
    conn.exec_driver_sql("INSERT INTO routing_ports (generation, number, operator_id, "
                         "ported_at) VALUES (?, ?, ?, ?)", list(batch))
