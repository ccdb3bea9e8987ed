"""Bulk first identification of an existing user base (``numident messenger identify-all``).

The input is a CSV with the header ``account_id,phone_number,possession_proven_at``: the number
in E.164 or in the national form of the deployment's region, the time in ISO 8601 with a zone
(when possession of the number was last proven, SPEC rule 0). Extra columns are ignored.

Contract:

1. ``loading`` reads the whole file before it stores anything: a file with any bad row (an
   account given twice among them) is refused whole (``InvalidFile``, every bad line and field
   named), and nothing is stored or sent. Then it routes the numbers (SPEC rule 2) and stores
   one row per account in ``bulk_identifications`` a chunk at a time as the job takes them,
   streaming: memory does not grow with the number of accounts. Loading the same file again
   adds only the accounts it did not hold, so a job interrupted while loading is resumed by
   loading again. An account the messenger service already holds is ``skipped`` (the service
   owns it); a number that no operator serves, or whose operator has no endpoint, is
   ``refused`` at once. ``load`` stores a whole file without sending.
2. ``BulkIdentification.run`` sends the ``queued`` accounts of each operator through its batch
   endpoint, ``batch_size`` at a time with at most ``concurrency`` batches in flight per
   operator, honouring 429 and ``Retry-After``; given a ``Loading``, it sends while the file is
   still being stored: each operator's senders take the batches the stream hands them (a few
   at most wait in memory; the rest wait in the table), then what is still ``queued`` in the
   table. Deferred (pending) answers are polled until answered or past their ``answerDue``.
   Every answer is written before the next batch of that worker is sent; a restarted run takes
   up what is still ``queued`` or ``pending`` and never asks again for an answered account. A
   batch whose answers were not recorded (the process died) is sent again with the same
   identification codes, which the gateway treats as the same usage.
3. Each answered account is created in the service's accounts in its final state (audited and
   announced like any state change): ``identified`` on ``confirmed``, ``refused`` on
   ``not_found``, ``unanswered`` when the gateway refused the item or the deadline passed. A
   notice that invalidated the code before the answer was recorded wins (SPEC rule 7): the
   account starts in ``reidentification_required``.
4. An operator whose gateway gives no usable answer for ``give_up_seconds`` is left alone for
   this run: its accounts stay ``queued`` for the next one; ``on_trouble`` hears when the
   trouble starts. A gateway that refuses the organizer's credentials (``invalid_client``,
   ``invalid_scope``) is left alone at once: waiting does not mend a key it does not know.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import pickle
import sqlite3
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol, TextIO

from sqlalchemy import Connection, Engine, and_, func, select, text

from numident.client.gateway import Answer, Refused, TryLater
from numident.core.accounts import AccountState
from numident.core.clock import Clock, rfc3339
from numident.core.follow_up import DEADLINE_PASSED, NOT_FOUND
from numident.core.identification import ANSWER_DEADLINE, Result
from numident.core.notices import NoticeType
from numident.core.numbers import normalize
from numident.errors import FileProblem, InvalidFile, InvalidPhoneNumber, NumidentError
from numident.messenger.accounts import AccountStore, Adopted, new_identification_code
from numident.messenger.delivery import queue_withdrawal
from numident.messenger.identification import NO_OPERATOR, OPERATOR_NOT_CONFIGURED
from numident.messenger.operators import OperatorDirectory, Route
from numident.messenger.tables import accounts, received_notices
from numident.messenger.tables import bulk_identifications as bulk
from numident.outbox.store import SqlOutbox
from numident.routing.files import Problems
from numident.storage.dialect import driver_sql, timestamp_binder

COLUMNS = ("account_id", "phone_number", "possession_proven_at")
QUEUED, PENDING, SKIPPED = "queued", "pending", "skipped"
OPEN_STATUSES = (QUEUED, PENDING)
ACCOUNT_IN_SERVICE = "ACCOUNT_IN_SERVICE"
CREDENTIALS_REFUSED = frozenset({"TOKEN_invalid_client", "TOKEN_invalid_scope",
                                 "TOKEN_unauthorized_client"})
"""Token refusals that waiting does not mend: the run stops for that operator at once."""
CHUNK = 2000

RouteMany = Callable[[Sequence[str]], Sequence[Route]]
Sleep = Callable[[float], Awaitable[None]]


class Progress(Protocol):
    """What a run tells of each operator's accounts (by ИНН) as it goes."""

    def add(self, inn: str, name: str, accounts: int, answered: int) -> None:
        """``accounts`` more accounts of the operator ``name`` to answer, ``answered`` of them
        answered already."""

    def advance(self, inn: str, accounts: int) -> None:
        """``accounts`` more of the operator's accounts answered."""


@dataclass(frozen=True)
class Entry:
    line: int
    account_id: str
    phone_number: str
    possession_proven_at: datetime


@dataclass
class LoadReport:
    rows: int = 0
    added: int = 0
    already_loaded: int = 0
    skipped: int = 0
    refused: int = 0

    def __str__(self) -> str:
        return (f"{self.rows} rows: {self.added} added ({self.refused} refused at once: no "
                f"operator to ask), {self.already_loaded} already loaded, {self.skipped} "
                "skipped (the service already holds the account)")


@dataclass
class OperatorRun:
    """What one run did for one operator; ``stopped`` says why it gave up, if it did."""

    inn: str
    sent: int = 0
    answered: int = 0
    stopped: str | None = None


@dataclass
class RunReport:
    operators: dict[str, OperatorRun] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(run.stopped is None for run in self.operators.values())


# -- reading the file -------------------------------------------------------------------------


def read_entries(path: Path, clock: Clock, *, default_region: str | None,
                 allowed_regions: frozenset[str]) -> Iterator[Entry]:
    """Every row of ``path``, checked; raises ``InvalidFile`` (after reading it all) if any is bad.

    Valid entries are yielded as they are read (none after the first bad row), so a caller
    must exhaust the iterator before it stores any of them (``loading`` spools them).
    """
    from numident.messenger.accounts import validate_account_id

    problems = Problems(path)
    now = clock.now()
    with _open_text(path) as handle, _SeenAccounts() as seen:
        reader = csv.reader(handle, strict=True)
        line = 1
        # Repeated accounts are looked for a chunk at a time; each line's problem is named in
        # line order all the same.
        chunk: list[Entry | FileProblem] = []

        def checked() -> Iterator[Entry]:
            repeated = seen.repeated([e for e in chunk if isinstance(e, Entry)])
            for item in chunk:
                if isinstance(item, Entry) and item.line in repeated:
                    item = FileProblem(item.line, "account_id", f"{item.account_id} is already "
                                       f"given on line {repeated[item.line]}")
                if isinstance(item, FileProblem):
                    problems.add(item.line, item.field, item.message)
                elif not problems.total:
                    yield item
            chunk.clear()

        try:
            header = [name.strip().lower() for name in next(reader, [])]
            missing = [name for name in COLUMNS if name not in header]
            if missing:
                raise InvalidFile(str(path), [FileProblem(1, name, "column is missing from the "
                                                          "header") for name in missing])
            where = [header.index(name) for name in COLUMNS]
            for line, row in enumerate(reader, start=2):
                if row:
                    chunk.append(_entry(line, row, len(header), where, now, default_region,
                                        allowed_regions, validate_account_id))
                    if len(chunk) == CHUNK:
                        yield from checked()
        except csv.Error as exc:
            chunk.append(FileProblem(line + 1, "-", f"not a readable CSV line: {exc}"))
        except UnicodeDecodeError as exc:
            chunk.append(FileProblem(line + 1, "-",
                                     f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        yield from checked()
    problems.raise_if_any()


def _entry(line: int, row: list[str], fields: int, where: list[int], now: datetime,
           default_region: str | None, allowed_regions: frozenset[str],
           validate_account_id: Callable[[str], str]) -> Entry | FileProblem:
    """The row's entry, or the problem of its first bad field (a repeat is found later)."""
    if len(row) < fields:
        return FileProblem(line, COLUMNS[0], f"{len(row)} fields, the header has {fields}")
    account_id = row[where[0]]
    try:
        validate_account_id(account_id)
    except NumidentError as exc:
        return FileProblem(line, "account_id", exc.message)
    try:
        number = normalize(row[where[1]], default_region=default_region,
                           allowed_regions=allowed_regions)
    except InvalidPhoneNumber as exc:
        return FileProblem(line, "phone_number", exc.message)
    proven = _proven_at(row[where[2]], now)
    if isinstance(proven, str):
        return FileProblem(line, "possession_proven_at", proven)
    return Entry(line, account_id, number, proven)


class _SeenAccounts:
    """The account ids a file has given so far, on disk (a temporary SQLite table), so that
    finding a repeated account costs no memory however long the file is."""

    def __enter__(self) -> _SeenAccounts:
        self._folder = tempfile.TemporaryDirectory(prefix="numident-bulk-")
        self._db = sqlite3.connect(Path(self._folder.name) / "seen.db")
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (account_id TEXT PRIMARY KEY, line INTEGER)")
        return self

    def repeated(self, entries: Sequence[Entry]) -> dict[int, int]:
        """``{line: first line}`` for each of ``entries`` whose account was given before (in
        ``entries`` too); remembers the others."""
        before = self._db.total_changes
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)",
                             [(e.account_id, e.line) for e in entries])
        if self._db.total_changes - before == len(entries):
            return {}
        first = {e.line: self._db.execute("SELECT line FROM seen WHERE account_id = ?",
                                          (e.account_id,)).fetchone()[0] for e in entries}
        return {line: int(given) for line, given in first.items() if given != line}

    def __exit__(self, *_: object) -> None:
        self._db.close()
        self._folder.cleanup()


def _open_text(path: Path) -> TextIO:
    return path.open(encoding="utf-8-sig", errors="strict", newline="")


def _proven_at(value: str, now: datetime) -> datetime | str:
    try:
        proven = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return "must be an ISO 8601 time, e.g. 2026-11-30T12:00:00Z"
    if proven.tzinfo is None:
        return "must carry a time zone (Z or +03:00)"
    if proven > now + timedelta(minutes=5):
        return "lies in the future"
    return proven


# -- storing and routing it -------------------------------------------------------------------


class Work(NamedTuple):
    """An account to ask its operator about, as ``bulk_identifications`` holds it."""

    account_id: str
    phone_number: str
    identification_code: str
    possession_proven_at: datetime
    operator_inn: str | None
    operator_name: str | None
    request_id: str | None = None
    answer_due: datetime | None = None


class Chunk(NamedTuple):
    """The accounts to ask of a chunk of the file: ``work[:earlier]`` an earlier run stored."""

    work: list[Work]
    earlier: int


_WORK = (bulk.c.account_id, bulk.c.phone_number, bulk.c.identification_code,
         bulk.c.possession_proven_at, bulk.c.operator_inn, bulk.c.operator_name,
         bulk.c.request_id, bulk.c.answer_due)


class Loading:
    """A checked file's accounts, stored and routed a chunk at a time as they are taken
    (module contract, 1): each step yields the chunk's accounts still ``queued``, new or left
    by an earlier run. ``report`` counts what was stored so far."""

    def __init__(self, engine: Engine, entries: Iterator[Entry], routes: RouteMany,
                 operators: OperatorDirectory, store: AccountStore, clock: Clock, *,
                 chunk: int = CHUNK) -> None:
        self.report = LoadReport()
        self._chunk = chunk
        self._engine = engine
        self._entries = entries
        self._routes = routes
        self._operators = operators
        self._store = store
        self._clock = clock

    def __iter__(self) -> Iterator[Chunk]:
        chunk: list[Entry] = []
        for entry in self._entries:
            chunk.append(entry)
            if len(chunk) == self._chunk:
                yield self._store_chunk(chunk)
                chunk = []
        if chunk:
            yield self._store_chunk(chunk)

    def _store_chunk(self, chunk: list[Entry]) -> Chunk:
        now = self._clock.now()
        routed = self._routes([entry.phone_number for entry in chunk])
        ids = [entry.account_id for entry in chunk]
        report = self.report
        with self._engine.begin() as conn:
            held = set(conn.scalars(select(accounts.c.account_id)
                                    .where(accounts.c.account_id.in_(ids))))
            stored = conn.execute(select(*_WORK, bulk.c.status)
                                  .where(bulk.c.account_id.in_(ids))).all()
            loaded = {row.account_id for row in stored}
            # An account an earlier run loaded and did not send yet is this run's work too.
            work = [Work._make(row[:len(_WORK)]) for row in stored if row.status == QUEUED]
            earlier = len(work)
            rows: list[Work] = []
            statuses: list[tuple[str, str | None]] = []
            for entry, route in zip(chunk, routed, strict=True):
                if entry.account_id in loaded:
                    continue
                loaded.add(entry.account_id)  # a second line for the same account is ignored
                status, reason = QUEUED, None
                if entry.account_id in held:
                    status, reason = SKIPPED, ACCOUNT_IN_SERVICE
                elif route.operator_inn is None:
                    status, reason = AccountState.REFUSED.value, NO_OPERATOR
                elif route.operator_inn not in self._operators.endpoints:
                    status, reason = AccountState.REFUSED.value, OPERATOR_NOT_CONFIGURED
                rows.append(Work(entry.account_id, entry.phone_number,
                                 new_identification_code(), entry.possession_proven_at,
                                 route.operator_inn, route.operator_name))
                statuses.append((status, reason))
            stamp = timestamp_binder(conn, bulk.c.updated_at)
            stamped = stamp(now)
            if rows:
                conn.exec_driver_sql(driver_sql(conn, _INSERT_QUEUED), [
                    (r.account_id, r.phone_number, r.identification_code,
                     stamp(r.possession_proven_at), r.operator_inn, r.operator_name,
                     status, reason, stamped)
                    for r, (status, reason) in zip(rows, statuses, strict=True)])
            report.rows += len(chunk)
            report.added += len(rows)
            report.already_loaded += len(chunk) - len(rows)
            refused = []
            for r, (status, reason) in zip(rows, statuses, strict=True):
                if status == QUEUED:
                    work.append(r)
                elif status == SKIPPED:
                    report.skipped += 1
                else:
                    refused.append(_adopted(r, AccountState.REFUSED, reason, None))
            report.refused += len(refused)
            self._store.adopt(conn, refused, now)
        return Chunk(work, earlier)


@contextlib.contextmanager
def loading(engine: Engine, path: Path, routes: RouteMany, operators: OperatorDirectory,
            store: AccountStore, clock: Clock, *, default_region: str | None,
            allowed_regions: frozenset[str], chunk: int = CHUNK) -> Iterator[Loading]:
    """Check the whole of ``path`` (``InvalidFile``, nothing stored), then the ``Loading`` of
    its accounts (module contract, 1).

    The checked rows are spooled to a temporary file, so that each number is parsed once and
    memory stays flat however long the file is.
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
        for entry in read_entries(path, clock, default_region=default_region,
                                  allowed_regions=allowed_regions):
            spool.write(f"{entry.account_id}\t{entry.phone_number}\t"
                        f"{entry.possession_proven_at.isoformat()}\n")
        spool.seek(0)
        yield Loading(engine, _spooled(spool), routes, operators, store, clock, chunk=chunk)


def _spooled(spool: TextIO) -> Iterator[Entry]:
    for line, text_line in enumerate(spool):
        account_id, number, proven = text_line.rstrip("\n").split("\t")
        yield Entry(line, account_id, number, datetime.fromisoformat(proven))


def load(engine: Engine, path: Path, routes: RouteMany, operators: OperatorDirectory,
         store: AccountStore, clock: Clock, *, default_region: str | None,
         allowed_regions: frozenset[str]) -> LoadReport:
    """Check the whole of ``path``, then store and route all its accounts, sending none."""
    with loading(engine, path, routes, operators, store, clock, default_region=default_region,
                 allowed_regions=allowed_regions) as stream:
        for _ in stream:
            pass
    return stream.report


_INSERT_QUEUED = (
    "INSERT INTO bulk_identifications (account_id, phone_number, identification_code, "
    "possession_proven_at, operator_inn, operator_name, status, reason, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id) DO NOTHING")


def _adopted(work: Work, state: AccountState, reason: str | None,
             request_id: str | None) -> Adopted:
    """The account that a stored bulk row becomes when answered."""
    detail = {"event": "bulk_identification",
              "possessionProvenAt": rfc3339(work.possession_proven_at)}
    if request_id:
        detail["requestId"] = request_id
    return Adopted(account_id=work.account_id, phone_number=work.phone_number,
                   identification_code=work.identification_code, state=state, reason=reason,
                   operator_inn=work.operator_inn, operator_name=work.operator_name,
                   detail=detail)


# -- running ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    status: str
    reason: str | None = None
    request_id: str | None = None
    answer_due: datetime | None = None


_RECORD = ("UPDATE bulk_identifications SET status = ?, reason = ?, request_id = ?, "
           "answer_due = ?, sent_at = COALESCE(sent_at, ?), updated_at = ? "
           "WHERE account_id = ?")


class BulkIdentification:
    """Sends the stored accounts to their operators' batch endpoints (module contract, 2-4)."""

    def __init__(self, engine: Engine, operators: OperatorDirectory, store: AccountStore,
                 outbox: SqlOutbox, clock: Clock, *, block_on_sim_swap: bool,
                 batch_size: int = 1000, concurrency: int = 4, poll_seconds: float = 5.0,
                 give_up_seconds: float = 1200.0, sleep: Sleep = asyncio.sleep,
                 on_trouble: Callable[[str, str], None] | None = None) -> None:
        self._engine = engine
        self._operators = operators
        self._store = store
        self._outbox = outbox
        self._clock = clock
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._poll_seconds = poll_seconds
        self._give_up = give_up_seconds
        self._sleep = sleep
        self._on_trouble = on_trouble
        self._invalidating = [t.value for t in NoticeType
                              if t.invalidates_usage or (block_on_sim_swap
                                                         and t is NoticeType.SIM_SWAPPED)]

    def open_work(self) -> dict[str, tuple[str, int, int]]:
        """Per operator with open work: ``(name, accounts in all, accounts answered)``."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(bulk.c.operator_inn, func.max(bulk.c.operator_name), func.count())
                .where(bulk.c.operator_inn.is_not(None))
                .group_by(bulk.c.operator_inn)).all()
            open_counts: dict[str, int] = dict(conn.execute(
                select(bulk.c.operator_inn, func.count())
                .where(bulk.c.status.in_(OPEN_STATUSES))
                .group_by(bulk.c.operator_inn)).all())
        return {inn: (name or inn, total, total - open_counts.get(inn, 0))
                for inn, name, total in rows if open_counts.get(inn)}

    async def run(self, progress: Progress | None = None, stream: Loading | None = None
                  ) -> RunReport:
        """Ask for every account still to ask: ``stream``'s as it stores them, then those the
        table holds ``queued``; then poll the pending ones (module contract, 2)."""
        report = RunReport()
        lanes: dict[str, _Lane] = {}
        async with asyncio.TaskGroup() as group:

            def lane(inn: str) -> _Lane:
                if inn not in lanes:
                    lanes[inn] = _Lane(self._concurrency)
                    report.operators[inn] = OperatorRun(inn)
                    group.create_task(self._operator(inn, report.operators[inn], lanes[inn],
                                                     progress))
                return lanes[inn]

            for inn, (name, total, done) in self.open_work().items():
                if progress is not None:
                    progress.add(inn, name, total, done)
                lane(inn)
            try:
                if stream is not None:
                    await self._feed(stream, lane, progress)
            finally:
                for each in lanes.values():
                    each.close()
        return report

    async def _feed(self, stream: Loading, lane: Callable[[str], _Lane],
                    progress: Progress | None) -> None:
        """Hand ``stream``'s accounts to their operators' lanes in batches as it stores them."""
        batches: dict[str, list[Work]] = {}
        for chunk in stream:
            if progress is not None:
                added: dict[str, tuple[str, int]] = {}
                for work in chunk.work[chunk.earlier:]:
                    inn = str(work.operator_inn)
                    added[inn] = (work.operator_name or inn, added.get(inn, ("", 0))[1] + 1)
                for inn, (name, count) in added.items():
                    progress.add(inn, name, count, 0)
            for work in chunk.work:
                inn = str(work.operator_inn)
                batch = batches.setdefault(inn, [])
                batch.append(work)
                if len(batch) == self._batch_size:
                    lane(inn).offer(batch)
                    batches[inn] = []
            await asyncio.sleep(0)  # the senders record their answers between two chunks
        for inn, batch in batches.items():
            if batch:
                lane(inn).offer(batch)

    async def _operator(self, inn: str, run: OperatorRun, lane: _Lane,
                        progress: Progress | None) -> None:
        client = self._operators.client(inn)
        if client is None:  # the endpoint was removed from the config since the load
            run.stopped = OPERATOR_NOT_CONFIGURED
            lane.stop()
            return
        failing = _Failing()

        async def streamed() -> None:
            while run.stopped is None and (batch := await lane.take()) is not None:
                await self._send(client, inn, batch, run, failing, progress)
            if run.stopped is not None:
                lane.stop()

        cursor = _Cursor()
        lock = asyncio.Lock()

        async def queued() -> None:
            while run.stopped is None:
                async with lock:
                    batch = self._next_batch(inn, cursor)
                if not batch:
                    return
                await self._send(client, inn, batch, run, failing, progress)

        # Once the stream's batches are all answered, what is still queued in the table is
        # what no sender holds: accounts of earlier files, and none of this one's twice.
        for sender in (streamed, queued):
            async with asyncio.TaskGroup() as group:
                for _ in range(self._concurrency):
                    group.create_task(sender())
        while run.stopped is None and await self._poll(client, inn, run, progress):
            await self._sleep(self._poll_seconds)

    def _next_batch(self, inn: str, cursor: _Cursor) -> list[Work]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(*_WORK).where(
                bulk.c.operator_inn == inn, bulk.c.status == QUEUED,
                bulk.c.account_id > cursor.after).order_by(bulk.c.account_id)
                .limit(self._batch_size)).all()
        if rows:
            cursor.after = rows[-1].account_id
        return [Work._make(row) for row in rows]

    async def _send(self, client: Any, inn: str, batch: list[Work], run: OperatorRun,
                    failing: _Failing, progress: Progress | None) -> None:
        delay = 1.0
        while True:
            reply = await client.submit_batch([(r.phone_number, r.identification_code)
                                               for r in batch])
            if not isinstance(reply, TryLater):
                break
            if reply.reason in CREDENTIALS_REFUSED:
                run.stopped = (f"the gateway refuses this organizer's credentials "
                               f"({reply.reason}): check the key and scopes registered there")
                return
            now = self._clock.now()
            if failing.since is None:
                failing.since = now
                if self._on_trouble is not None:
                    self._on_trouble(inn, f"no usable answer ({reply.reason}); trying again "
                                     f"for up to {self._give_up:.0f} s")
            if (now - failing.since).total_seconds() >= self._give_up:
                run.stopped = f"no usable answer for {self._give_up:.0f} s: {reply.reason}"
                return
            await self._sleep(reply.retry_after if reply.retry_after is not None else delay)
            delay = min(delay * 2, 60.0)
        failing.since = None
        sent_at = self._clock.now()
        if isinstance(reply, Refused):
            outcomes = [_Outcome(AccountState.UNANSWERED.value, reply.reason)] * len(batch)
        else:
            outcomes = [_outcome(item, sent_at) for item in reply]
        run.sent += len(batch)
        self._record(inn, batch, outcomes, sent_at, run, progress)

    async def _poll(self, client: Any, inn: str, run: OperatorRun,
                    progress: Progress | None) -> bool:
        """Look once at every pending request of ``inn``; True while some stay pending."""
        cursor = _Cursor()
        left = False
        limit = asyncio.Semaphore(self._concurrency * 4)
        while True:
            with self._engine.connect() as conn:
                rows = [Work._make(row) for row in conn.execute(select(*_WORK).where(
                    bulk.c.operator_inn == inn, bulk.c.status == PENDING,
                    bulk.c.account_id > cursor.after).order_by(bulk.c.account_id)
                    .limit(self._batch_size))]
            if not rows:
                return left
            cursor.after = rows[-1].account_id

            async def look(row: Work) -> _Outcome:
                async with limit:
                    reply = await client.fetch(row.request_id)
                now = self._clock.now()
                if isinstance(reply, Answer) and reply.result is not None:
                    return _outcome(reply, now)
                if row.answer_due is not None and now >= row.answer_due:
                    return _Outcome(AccountState.UNANSWERED.value, DEADLINE_PASSED)
                if isinstance(reply, Refused):
                    return _Outcome(AccountState.UNANSWERED.value, reply.reason)
                return _Outcome(PENDING, None, row.request_id, row.answer_due)

            outcomes = await asyncio.gather(*(look(row) for row in rows))
            left = left or any(o.status == PENDING for o in outcomes)
            self._record(inn, rows, list(outcomes), None, run, progress)

    def _record(self, inn: str, rows: Sequence[Work], outcomes: Sequence[_Outcome],
                sent_at: datetime | None, run: OperatorRun, progress: Progress | None) -> None:
        now = self._clock.now()
        with self._engine.begin() as conn:
            outcomes = self._after_notices(conn, inn, rows, outcomes)
            stamp = timestamp_binder(conn, bulk.c.updated_at)
            sent, stamped = stamp(sent_at), stamp(now)
            conn.exec_driver_sql(driver_sql(conn, _RECORD), [
                (o.status, o.reason, o.request_id, stamp(o.answer_due), sent, stamped,
                 r.account_id) for r, o in zip(rows, outcomes, strict=True)])
            final = [(r, o) for r, o in zip(rows, outcomes, strict=True)
                     if o.status != PENDING]
            adopted = self._store.adopt(conn, [
                _adopted(r, AccountState(o.status), o.reason, o.request_id)
                for r, o in final],
                now)
            for row, outcome in final:
                if (outcome.status == AccountState.IDENTIFIED.value
                        and row.account_id not in adopted):
                    # The service took the account over meanwhile: our usage must not linger.
                    queue_withdrawal(self._outbox, conn, inn, row.identification_code,
                                     row.account_id, now)
        run.answered += len(final)
        if progress is not None and final:
            progress.advance(inn, len(final))

    def _after_notices(self, conn: Connection, inn: str, rows: Sequence[Work],
                       outcomes: Sequence[_Outcome]) -> list[_Outcome]:
        """``outcomes`` with each confirmation that a received notice invalidated (rule 7)."""
        confirmed = [r.identification_code for r, o in zip(rows, outcomes, strict=True)
                     if o.status == AccountState.IDENTIFIED.value]
        if not confirmed:
            return list(outcomes)
        if conn.dialect.name == "postgresql":
            # Notices committed before this lock are seen below; a notice committed after it
            # finds the accounts this transaction creates, so none falls between the two.
            conn.execute(text("LOCK TABLE received_notices IN SHARE MODE"))
        noticed = dict(conn.execute(
            select(received_notices.c.identification_code, received_notices.c.type).where(and_(
                received_notices.c.operator_inn == inn,
                received_notices.c.identification_code.in_(confirmed),
                received_notices.c.type.in_(self._invalidating)))).all())
        return [_Outcome(AccountState.REIDENTIFICATION_REQUIRED.value,
                         noticed[r.identification_code].upper(), o.request_id)
                if o.status == AccountState.IDENTIFIED.value and r.identification_code in noticed
                else o for r, o in zip(rows, outcomes, strict=True)]


@dataclass
class _Cursor:
    after: str = ""


class _Lane:
    """The batches the stream hands one operator's senders, first in first out: a few wait in
    memory, the others in a temporary file, so memory stays flat whatever the order of the
    file's operators. A stopped lane drops what it is handed: those accounts stay queued in
    the table for the next run."""

    def __init__(self, room: int) -> None:
        self._room = room
        self._waiting: deque[list[Work]] = deque()
        self._spill: BinaryIO | None = None
        self._spilled = 0
        self._read_at = 0
        self._closed = self._stopped = False
        self._changed = asyncio.Event()

    def offer(self, batch: list[Work]) -> None:
        if self._stopped:
            return
        if self._spilled or len(self._waiting) >= self._room:
            if self._spill is None:
                # Closed once drained or stopped (and by the collector in any case).
                self._spill = tempfile.TemporaryFile(prefix="numident-bulk-")  # noqa: SIM115
            self._spill.seek(0, io.SEEK_END)
            pickle.dump(batch, self._spill, protocol=pickle.HIGHEST_PROTOCOL)
            self._spilled += 1
        else:
            self._waiting.append(batch)
        self._changed.set()

    async def take(self) -> list[Work] | None:
        """The next batch; None once the lane is closed and empty, or stopped."""
        while not self._stopped:
            if self._waiting:
                return self._waiting.popleft()
            if self._spill is not None and self._spilled:
                self._spill.seek(self._read_at)
                batch: list[Work] = pickle.load(self._spill)  # noqa: S301 (our own spill)
                self._read_at = self._spill.tell()
                self._spilled -= 1
                return batch
            if self._closed:
                self._drop_spill()
                return None
            self._changed.clear()
            await self._changed.wait()
        return None

    def close(self) -> None:
        """No more batches come; ``take`` ends once the lane is empty."""
        self._closed = True
        self._changed.set()

    def stop(self) -> None:
        """Drop what waits and what comes."""
        self._stopped = True
        self._waiting.clear()
        self._drop_spill()
        self._changed.set()

    def _drop_spill(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None
            self._spilled = 0


@dataclass
class _Failing:
    """Since when an operator's gateway has given no usable answer (None: it answers)."""

    since: datetime | None = None


def _outcome(reply: Answer | Refused, now: datetime) -> _Outcome:
    if isinstance(reply, Refused):
        return _Outcome(AccountState.UNANSWERED.value, reply.reason)
    if reply.result is Result.CONFIRMED:
        return _Outcome(AccountState.IDENTIFIED.value, None, reply.request_id)
    if reply.result is Result.NOT_FOUND:
        return _Outcome(AccountState.REFUSED.value, NOT_FOUND, reply.request_id)
    due = reply.answer_due or (reply.received_at or now) + ANSWER_DEADLINE
    return _Outcome(PENDING, None, reply.request_id, due)


# -- reporting --------------------------------------------------------------------------------


def summary(engine: Engine) -> list[tuple[str, str, str, int]]:
    """``(operator name, ИНН, status, accounts)`` for every operator and status, sorted."""
    with engine.connect() as conn:
        rows = conn.execute(select(func.max(bulk.c.operator_name), bulk.c.operator_inn,
                                   bulk.c.status, func.count())
                            .group_by(bulk.c.operator_inn, bulk.c.status)).all()
    return sorted((name or "no operator", inn or "-", status, count)
                  for name, inn, status, count in rows)


def write_unidentified(engine: Engine, target: TextIO) -> int:
    """Write every account not identified (``account_id,phone_number,operator_inn,status,
    reason``) to ``target``, streamed; returns how many."""
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(["account_id", "phone_number", "operator_inn", "status", "reason"])
    written = 0
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=5000).execute(
            select(bulk.c.account_id, bulk.c.phone_number, bulk.c.operator_inn, bulk.c.status,
                   bulk.c.reason).where(bulk.c.status != AccountState.IDENTIFIED.value)
            .order_by(bulk.c.account_id))
        for row in result:
            writer.writerow([row.account_id, row.phone_number, row.operator_inn or "",
                             row.status, row.reason or ""])
            written += 1
    return written
