"""The import's switch: staged rows applied to the registry in short transactions that roll forward.

SQLite lets one writer in at a time, so a switch done as one transaction stops every
identification for as long as it runs (about 0.85 s per 100k changed rows). The switch is
therefore a series of short transactions, paced (:class:`Pace`) so that serving's writers get
the lock between them, in two phases:

1. **publish**: the import's temporary staged rows are copied, in ``phone_number`` order,
   into ``subscriber_import_rows`` (and ``subscriber_import_holders``) under a journal row
   in ``subscriber_imports``, state ``staging``. Nothing serves from those tables. One last
   transaction turns the journal to ``switching``: that is the import's commit point. An
   import killed before it has changed nothing; what it wrote is discarded (state
   ``abandoned``) once its heartbeat is :data:`LEASE` old.
2. **apply**: chunk after chunk of ``seq``, one transaction claims the chunk (it moves the
   journal's ``applied`` from the chunk's start to its end, compare-and-set), classifies its
   rows against the registry as it is at that moment, updates and inserts them, appends their
   ``subscriber_history``, upserts the holder attributes, ends the usages of every number
   whose contract ended or changed hands with their notices in the outbox
   (:func:`numident.operator.events.invalidate_usages`), deletes the chunk's staged rows and
   adds its counts to the journal. A number's row, history and notices always move together,
   and every notice commits with the change it announces.

Once ``switching``, a journal is completed by whoever runs next: the import run again, the
next import (each completes the journals before its own, in order, before it reads its
file), or the gateway (:func:`run_recovery` takes over a journal whose heartbeat is
:data:`LEASE` old). Two processes completing one journal at once are safe: the claim is a
compare-and-set on the journal row (PostgreSQL holds the row's lock until commit; SQLite has
one writer), so each chunk applies exactly once.

Roll-forward rather than generations: a generation-based registry (the new rows written beside
the old, made current by flipping one number) would keep the flip atomic, but every
identification would read through a generation, the registry would hold every changed row
twice, and the usage invalidations and notices, which must commit with the change they
announce, would all fall into the flip's transaction: the long transaction again. The journal
leaves serving's reads as they are and bounds every transaction.

While a switch runs the registry is old for some numbers and new for others; each number is
wholly one or the other. A lifecycle event recorded after the import began (its
``subscriber_history`` id is above the journal's ``history_mark``) is newer than the export:
its number is left as the event made it (counted ``superseded``).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)

from numident.core.clock import SystemClock
from numident.core.identification import ContractStatus
from numident.core.registry import DIFFERENCE_EVENTS, Difference
from numident.errors import Conflict
from numident.operator import events
from numident.operator import tables as registry_tables
from numident.operator.tables import (
    IMPORT_HOLDER_COLUMNS,
    subscriber_history,
    subscriber_import_holders,
    subscriber_import_rows,
    subscriber_imports,
    subscribers,
)
from numident.outbox.loop import StopSignal, WakeableLoop
from numident.storage.database import TEMP_ONLY, is_postgresql, read_only
from numident.storage.dialect import conflict_insert
from numident.storage.types import UtcDateTime

LEASE = timedelta(seconds=15)
"""A journal whose heartbeat is this old has lost its process: the gateway takes it over."""
RECOVERY_SECONDS = 5.0
"""How often the gateway looks for such journals."""
Progress = Callable[[int], None]

_temporary = MetaData()
staged = Table(
    "import_staged", _temporary,
    Column("line", Integer, nullable=False, comment="the file's line; seq while switching"),
    Column("phone_number", String(16), nullable=False),
    Column("contract_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("activated_at", UtcDateTime, nullable=True),
    Column("outcome", String(10), nullable=True,
           comment="NULL: new; updated; unchanged; superseded"),
    Column("kind", String(32), nullable=True, comment="the lifecycle event of the change"),
    prefixes=["TEMPORARY"],
)
staged_holders = Table(
    "import_staged_holders", _temporary,
    Column("line", Integer, nullable=False),
    *(Column(name, registry_tables.holders.c[name].type, nullable=True)
      for name in IMPORT_HOLDER_COLUMNS),
    prefixes=["TEMPORARY"],
)
_ROW_COLUMNS = ["phone_number", "contract_id", "status", "activated_at"]


@dataclass(frozen=True)
class Pace:
    """How the switch shares the database with serving."""

    target_seconds: float = 0.2
    """Each transaction aims at this long: the rows of the next follow from the last one's."""
    pause_seconds: float = 0.12
    """SQLite: the least pause after each transaction. A writer that found the lock taken
    polls it at least every 100 ms (SQLite's busy handler), so each waiting writer gets in."""
    share: float = 1.0
    """SQLite: the pause is also at least this many times the transaction before it, so that
    serving keeps that share of the database's time however slow the machine has become."""
    first_rows: int = 5_000
    min_rows: int = 500
    max_rows: int = 200_000

    def next_rows(self, rows: int, seconds: float) -> int:
        """Rows for the next transaction after ``rows`` took ``seconds`` (at most doubled)."""
        scaled = rows * self.target_seconds / max(seconds, 1e-3)
        return int(max(self.min_rows, min(self.max_rows, scaled, rows * 2)))

    def pause(self, engine: Engine, held: float) -> None:
        """Let serving in after a transaction that held the database ``held`` seconds."""
        if not is_postgresql(engine):
            time.sleep(max(self.pause_seconds, self.share * held))


@dataclass
class Switched:
    """One import's switch: the journal's counts, and what this process spent on it."""

    import_id: int
    rows: int
    inserted: int
    updated: int
    unchanged: int
    superseded: int
    notices: int
    seconds: float = 0.0
    """How long this process spent applying it."""
    longest_hold: float = 0.0
    """The longest single transaction of it that wrote the database (here)."""


def _now() -> datetime:
    return datetime.now(UTC)


# -- the staging tables ----------------------------------------------------------------------


IMPORT_CACHE_KIB = 256 << 10
"""SQLite page cache of an import's connection: a chunk writes its pages once, at commit,
instead of spilling them to the log mid-transaction."""
DEFAULT_CACHE_KIB = 2000


def create_staging(conn: Connection, *, has_holders: bool) -> None:
    """The connection's temporary tables: the staged file, or the chunk being switched."""
    with conn.begin():
        if not is_postgresql(conn.engine):
            conn.exec_driver_sql(f"PRAGMA cache_size = -{IMPORT_CACHE_KIB}")
        _drop_tables(conn)
        staged.create(conn)
        if has_holders:
            staged_holders.create(conn)


def index_staging(conn: Connection, *, has_holders: bool) -> None:
    """Index the staged file for the duplicate checks and the copy in number order."""
    with conn.begin():
        conn.exec_driver_sql(f"CREATE INDEX import_staged_number ON {staged.name} "
                             "(phone_number, line)")
        if has_holders:
            conn.exec_driver_sql(f"CREATE INDEX import_staged_holder_line ON "
                                 f"{staged_holders.name} (line)")
        _analyze(conn)


def drop_staging(conn: Connection) -> None:
    if conn.invalidated or conn.closed:
        return
    if conn.in_transaction():
        conn.rollback()
    conn.execution_options(**{TEMP_ONLY: True})
    with conn.begin():
        _drop_tables(conn)
        if not is_postgresql(conn.engine):
            conn.exec_driver_sql(f"PRAGMA cache_size = -{DEFAULT_CACHE_KIB}")


def _drop_tables(conn: Connection) -> None:
    schema = "pg_temp" if is_postgresql(conn.engine) else "temp"
    for table in (staged, staged_holders):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {schema}.{table.name}")


def _analyze(conn: Connection) -> None:
    if is_postgresql(conn.engine):
        # autovacuum never analyses temporary tables: without statistics the planner
        # would join the staged rows to the registry as if they were a handful
        conn.exec_driver_sql(f"ANALYZE {staged.name}")


# -- publish ---------------------------------------------------------------------------------


def history_mark(engine: Engine) -> int:
    """The last ``subscriber_history`` id: events recorded after it are newer than an export
    read from now on."""
    with read_only(engine) as conn:
        return int(conn.execute(select(func.coalesce(func.max(subscriber_history.c.id), 0)))
                   .scalar_one())


def publish(conn: Connection, *, has_holders: bool, imported_at: datetime,
            notice_source: str, mark: int, pace: Pace) -> tuple[int, float]:
    """Copy the staged rows of ``conn``'s temporary tables into a new journal, and commit it.

    Returns the journal's id and the longest transaction it took. On return the import is
    certain to be applied, by this process or the next. :class:`Conflict` if the journal was
    taken for abandoned meanwhile (its heartbeat stopped for :data:`LEASE`).
    """
    longest = 0.0
    with conn.begin():
        rows = int(conn.execute(select(func.count()).select_from(staged)).scalar_one())
        import_id = int(conn.execute(insert(subscriber_imports).values(
            state="staging", imported_at=imported_at, notice_source=notice_source,
            has_holders=has_holders, history_mark=mark, row_count=rows, applied=0,
            inserted=0, updated=0, unchanged=0, superseded=0, notices=0,
            heartbeat_at=_now()).returning(subscriber_imports.c.id)).scalar_one())
    done, after, chunk = 0, "", pace.first_rows
    while True:
        with conn.begin():
            started = time.perf_counter()  # once the lock is ours: BEGIN waits for it
            _alive(conn, import_id, "staging")
            if done < rows:
                conn.execute(_COPY_ROWS, {"id": import_id, "base": done, "after": after,
                                          "n": chunk})
                last = conn.execute(select(subscriber_import_rows.c.seq,
                                           subscriber_import_rows.c.phone_number)
                                    .where(subscriber_import_rows.c.import_id == import_id)
                                    .order_by(subscriber_import_rows.c.seq.desc()).limit(1)
                                    ).first()
                if last is None or last.seq == done:
                    raise AssertionError(f"{rows - done} staged rows went missing")
                if has_holders:
                    conn.execute(_COPY_HOLDERS, {"id": import_id, "lo": done, "hi": last.seq})
                taken, done, after = last.seq - done, last.seq, str(last.phone_number)
            if done == rows:
                conn.execute(update(subscriber_imports)
                             .where(subscriber_imports.c.id == import_id)
                             .values(state="switching" if rows else "done",
                                     finished_at=None if rows else _now()))
        held = time.perf_counter() - started
        longest = max(longest, held)
        pace.pause(conn.engine, held)
        if done == rows:
            break
        chunk = pace.next_rows(taken, held)
    return import_id, longest


def _alive(conn: Connection, import_id: int, state: str) -> None:
    """Renew the journal's heartbeat; :class:`Conflict` if it is no longer in ``state``."""
    renewed = conn.execute(update(subscriber_imports).where(
        subscriber_imports.c.id == import_id, subscriber_imports.c.state == state)
        .values(heartbeat_at=_now())).rowcount
    if not renewed:
        raise Conflict(f"import {import_id} was given up for abandoned while it was staging "
                       f"(no progress for {LEASE.total_seconds():.0f} s); run it again",
                       code="IMPORT_ABANDONED")


def _copy_rows() -> Any:
    numbered = (select(*(staged.c[name] for name in _ROW_COLUMNS))
                .where(staged.c.phone_number > bindparam("after"))
                .order_by(staged.c.phone_number).limit(bindparam("n")).subquery())
    return insert(subscriber_import_rows).from_select(
        ["import_id", "seq", *_ROW_COLUMNS],
        select(bindparam("id", type_=Integer),
               bindparam("base", type_=Integer) + func.row_number().over(
                   order_by=numbered.c.phone_number),
               *(numbered.c[name] for name in _ROW_COLUMNS)))


def _copy_holders() -> Any:
    r, h = subscriber_import_rows, staged_holders
    return insert(subscriber_import_holders).from_select(
        ["import_id", "seq", *IMPORT_HOLDER_COLUMNS],
        select(r.c.import_id, r.c.seq, *(h.c[name] for name in IMPORT_HOLDER_COLUMNS))
        .join(staged, staged.c.phone_number == r.c.phone_number)
        .join(h, h.c.line == staged.c.line)
        .where(r.c.import_id == bindparam("id"), r.c.seq > bindparam("lo"),
               r.c.seq <= bindparam("hi")))


_COPY_ROWS = _copy_rows()
_COPY_HOLDERS = _copy_holders()


# -- apply -----------------------------------------------------------------------------------


def complete(engine: Engine, *, pace: Pace | None = None, up_to: int | None = None,
             stale_only: bool = False, stop: StopSignal | None = None,
             switched: Progress | None = None,
             handlers: events.LifecycleHandlers) -> list[Switched]:
    """Apply every journal still ``switching`` (up to ``up_to``), oldest first.

    With ``stale_only`` only those whose heartbeat is :data:`LEASE` old (their process is
    gone); abandoned ``staging`` journals are discarded first. ``stop`` ends the work between
    two chunks (someone else completes it later); ``switched`` is told the rows of each chunk;
    ``handlers`` are told the lines each chunk ends (:class:`~numident.operator.events.LinesEnded`).
    """
    pace = pace or Pace()
    discard_abandoned(engine, pace)
    done: list[Switched] = []
    while stop is None or not stop.is_set():
        query = (select(subscriber_imports.c.id).where(subscriber_imports.c.state == "switching")
                 .order_by(subscriber_imports.c.id).limit(1))
        if up_to is not None:
            query = query.where(subscriber_imports.c.id <= up_to)
        if stale_only:
            query = query.where(subscriber_imports.c.heartbeat_at < _now() - LEASE)
        with read_only(engine) as conn:
            import_id = conn.execute(query).scalar()
        if import_id is None:
            break
        done.append(_apply(engine, import_id, pace, stop, switched, handlers))
    return done


def outcome(engine: Engine, import_id: int) -> Switched:
    """The counts a journal holds so far."""
    j = subscriber_imports.c
    with read_only(engine) as conn:
        row = conn.execute(select(j.row_count, j.inserted, j.updated, j.unchanged, j.superseded,
                                  j.notices).where(j.id == import_id)).one()
    return Switched(import_id, row.row_count, row.inserted, row.updated, row.unchanged,
                    row.superseded, row.notices)


def _apply(engine: Engine, import_id: int, pace: Pace, stop: StopSignal | None,
           switched: Progress | None, handlers: events.LifecycleHandlers) -> Switched:
    began = time.perf_counter()
    longest = 0.0
    j = subscriber_imports.c
    with engine.connect() as conn:
        with read_only(engine) as reading:
            journal = reading.execute(select(subscriber_imports).where(j.id == import_id)).one()
        conn.execution_options(**{TEMP_ONLY: True})
        create_staging(conn, has_holders=journal.has_holders)
        try:
            with conn.begin():
                conn.exec_driver_sql(f"CREATE INDEX import_staged_number ON {staged.name} "
                                     "(phone_number)")
            conn.execution_options(**{TEMP_ONLY: False})
            rows = pace.first_rows
            while stop is None or not stop.is_set():
                with read_only(engine) as reading:
                    state, lo = reading.execute(select(j.state, j.applied)
                                                .where(j.id == import_id)).one()
                if state != "switching":
                    break
                hi = min(lo + rows, journal.row_count)
                with conn.begin():
                    started = time.perf_counter()
                    claimed = conn.execute(update(subscriber_imports).where(
                        j.id == import_id, j.state == "switching", j.applied == lo).values(
                        applied=hi, heartbeat_at=_now(),
                        state="done" if hi >= journal.row_count else "switching",
                        finished_at=_now() if hi >= journal.row_count else None)).rowcount
                    if claimed:
                        _apply_chunk(conn, journal, lo, hi, handlers)
                held = time.perf_counter() - started
                if claimed:
                    longest = max(longest, held)
                    rows = pace.next_rows(hi - lo, held)
                    if switched is not None:
                        switched(hi - lo)
                    if hi < journal.row_count:
                        pace.pause(engine, held)
        finally:
            drop_staging(conn)
    result = outcome(engine, import_id)
    result.seconds, result.longest_hold = time.perf_counter() - began, longest
    return result


def _apply_chunk(conn: Connection, journal: Any, lo: int, hi: int,
                 handlers: events.LifecycleHandlers) -> None:
    """Switch in the journal's rows ``lo < seq <= hi``, in the caller's transaction."""
    pairs = [(staged, subscriber_import_rows, _ROW_COLUMNS)]
    if journal.has_holders:
        pairs.append((staged_holders, subscriber_import_holders, IMPORT_HOLDER_COLUMNS))
    for buffer, source, names in pairs:
        in_chunk = (source.c.import_id == journal.id, source.c.seq > lo, source.c.seq <= hi)
        if is_postgresql(conn.engine):
            conn.exec_driver_sql(f"TRUNCATE {buffer.name}")
        else:
            conn.execute(buffer.delete())
        conn.execute(buffer.insert().from_select(
            ["line", *names], select(source.c.seq, *(source.c[n] for n in names))
            .where(*in_chunk)))
        conn.execute(source.delete().where(*in_chunk))
    _analyze(conn)
    # two subqueries: SQLite reads a lone min() or max() off the index, both at once by a scan
    first, last = conn.execute(select(
        select(func.min(staged.c.phone_number)).scalar_subquery(),
        select(func.max(staged.c.phone_number)).scalar_subquery())).one()
    notices = _switch(conn, has_holders=journal.has_holders, now=journal.imported_at,
                      notice_source=journal.notice_source, mark=journal.history_mark,
                      numbers=(first, last), handlers=handlers)
    counts = dict.fromkeys(("inserted", "updated", "unchanged", "superseded"), 0)
    for result, count in conn.execute(select(staged.c.outcome, func.count())
                                      .group_by(staged.c.outcome)):
        counts["inserted" if result is None else str(result)] = count
    j = subscriber_imports.c
    conn.execute(update(subscriber_imports).where(j.id == journal.id).values(
        notices=j.notices + notices, **{name: j[name] + count for name, count in counts.items()}))


def _switch(conn: Connection, *, has_holders: bool, now: datetime, notice_source: str,
            mark: int, numbers: tuple[str, str], handlers: events.LifecycleHandlers) -> int:
    """Apply the staged rows to the registry, set-based, in the caller's transaction; return
    how many notices were queued.

    ``numbers`` are the least and greatest staged number. Every join to the registry and its
    history is bounded by them as well as by the number itself: a chunk is a run of numbers
    in order, so its rows are read by a range of the index. Without the bound PostgreSQL
    joins a chunk of thousands of rows by hashing, reading the whole registry (and every
    history row of the import so far) for each chunk.
    """
    s, live, h = staged, subscribers, subscriber_history
    in_force = live.c.status != ContractStatus.TERMINATED.value
    in_live = (live.c.phone_number == s.c.phone_number, live.c.phone_number.between(*numbers))
    conn.execute(update(s).where(exists().where(
        h.c.phone_number == s.c.phone_number, h.c.phone_number.between(*numbers),
        h.c.id > mark, h.c.change != "import"))
        .values(outcome="superseded"))
    # A line that would revive a contract ended since it was staged (a lifecycle event
    # committed meanwhile) is left as it is: the event is newer than the export.
    conn.execute(update(s).where(*in_live, s.c.outcome.is_(None)).values(
        outcome=case((and_(live.c.contract_id == s.c.contract_id, live.c.status == s.c.status,
                           live.c.activated_at.is_not_distinct_from(s.c.activated_at)),
                      "unchanged"), (revives(s, live), "unchanged"), else_="updated"),
        kind=case(*((and_(in_force, _differs(difference, s, live)), kind.value)
                    for difference, kind in DIFFERENCE_EVENTS), else_=None)))
    changed = or_(s.c.outcome.is_(None), s.c.outcome == "updated")
    stamp = literal(now, UtcDateTime)
    # Changed lines are updated in place, new ones inserted: an upsert of a changed line
    # would first try the insert and fail on the key, doing the B-tree work twice.
    conn.execute(update(live).where(*in_live, s.c.outcome == "updated")
                 .values(contract_id=s.c.contract_id, status=s.c.status,
                         activated_at=s.c.activated_at, updated_at=stamp))
    upsert = conflict_insert(conn, live).from_select(
        ["phone_number", "contract_id", "status", "activated_at", "updated_at"],
        select(s.c.phone_number, s.c.contract_id, s.c.status, s.c.activated_at, stamp)
        .where(s.c.outcome.is_(None)).order_by(s.c.phone_number))
    conn.execute(upsert.on_conflict_do_update(index_elements=["phone_number"], set_={
        name: upsert.excluded[name]
        for name in ("contract_id", "status", "activated_at", "updated_at")}))
    conn.execute(subscriber_history.insert().from_select(
        ["phone_number", "contract_id", "status", "change", "occurred_at"],
        select(s.c.phone_number, s.c.contract_id, s.c.status, literal("import"), stamp)
        .where(changed).order_by(s.c.phone_number, s.c.line)))
    if has_holders:
        holder_upsert = conflict_insert(conn, registry_tables.holders).from_select(
            IMPORT_HOLDER_COLUMNS,
            select(*(staged_holders.c[name] for name in IMPORT_HOLDER_COLUMNS)).where(true()))
        conn.execute(holder_upsert.on_conflict_do_update(index_elements=["phone_number"], set_={
            name: holder_upsert.excluded[name] for name in IMPORT_HOLDER_COLUMNS[1:]}))
    return events.invalidate_usages(
        conn, select(s.c.phone_number, s.c.kind).where(s.c.kind.is_not(None)),
        occurred_at=now, recorded_at=now, event_id=None, actor="import",
        notice_source=notice_source, handlers=handlers)


def _differs(difference: Difference, s: Any, live: Any) -> Any:
    """The SQL of :func:`numident.core.registry.differences`: staged ``s`` against ``live``."""
    if difference is Difference.OTHER_CONTRACT:
        return live.c.contract_id != s.c.contract_id
    return s.c.status == ContractStatus.TERMINATED.value


def revives(s: Any, live: Any) -> Any:
    """A staged line that lists in force a contract the registry holds as ended."""
    return and_(live.c.contract_id == s.c.contract_id,
                live.c.status == ContractStatus.TERMINATED.value,
                s.c.status != ContractStatus.TERMINATED.value)


# -- recovery --------------------------------------------------------------------------------


def discard_abandoned(engine: Engine, pace: Pace) -> int:
    """Give up every journal still ``staging`` whose heartbeat is :data:`LEASE` old: it is
    marked ``abandoned`` and its rows are deleted, a chunk per transaction. Returns how many."""
    j = subscriber_imports.c
    with read_only(engine) as conn:
        abandoned = conn.execute(select(j.id).where(
            j.state == "staging", j.heartbeat_at < _now() - LEASE)).scalars().all()
    for import_id in abandoned:
        with engine.begin() as conn:
            conn.execute(update(subscriber_imports).where(j.id == import_id,
                                                          j.state == "staging")
                         .values(state="abandoned", finished_at=_now()))
            last = conn.execute(select(func.max(subscriber_import_rows.c.seq)).where(
                subscriber_import_rows.c.import_id == import_id)).scalar() or 0
        for lo in range(0, last, pace.max_rows):
            started = time.perf_counter()
            with engine.begin() as conn:
                for table in (subscriber_import_rows, subscriber_import_holders):
                    conn.execute(table.delete().where(
                        table.c.import_id == import_id, table.c.seq > lo,
                        table.c.seq <= lo + pace.max_rows))
            pace.pause(engine, time.perf_counter() - started)
    return len(abandoned)


async def run_recovery(engine: Engine, stop: StopSignal, on_notices: Callable[[], None],
                       interval: float = RECOVERY_SECONDS, *,
                       handlers: events.LifecycleHandlers) -> None:
    """The gateway's part: every ``interval`` seconds, complete the journals whose process is
    gone (and discard abandoned ones) until ``stop``; ``on_notices`` is called after a
    completion that queued notices (it wakes the dispatcher)."""

    async def step() -> bool:
        finished = await asyncio.to_thread(functools.partial(
            complete, engine, stale_only=True, stop=stop, handlers=handlers))
        if any(item.notices for item in finished):
            on_notices()
        return False

    await WakeableLoop(SystemClock()).run(step, stop, interval)
