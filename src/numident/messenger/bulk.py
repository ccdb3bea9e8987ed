"""Bulk first identification of an existing user base (``numident messenger identify-all``).

The input is a CSV with the header ``account_id,phone_number,possession_proven_at``: the number
in E.164 or in the national form of the deployment's region, the time in ISO 8601 with a zone
(when possession of the number was last proven, SPEC rule 0). Extra columns are ignored.

Contract:

1. ``load`` reads the whole file before it stores anything: a file with any bad row (an
   account given twice among them) is refused whole (``InvalidFile``, every bad line and field
   named). It then routes every number (SPEC rule 2) and stores one row per account in
   ``bulk_identifications``, in chunks, streaming:
   memory does not grow with the number of accounts. Loading the same file again adds only the
   accounts it did not hold, so a job interrupted while loading is resumed by loading again.
   An account the messenger service already holds is ``skipped`` (the service owns it); a
   number that no operator serves, or whose operator has no endpoint, is ``refused`` at once.
2. ``BulkIdentification.run`` sends the ``queued`` accounts of each operator through its batch
   endpoint, ``batch_size`` at a time with at most ``concurrency`` batches in flight per
   operator, honouring 429 and ``Retry-After``; deferred (pending) answers are polled until
   answered or past their ``answerDue``. Every answer is written before the next batch of that
   worker is sent; a restarted run takes up what is still ``queued`` or ``pending`` and never
   asks again for an answered account. A batch whose answers were not recorded (the process
   died) is sent again with the same identification codes, which the gateway treats as the
   same usage.
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
import csv
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

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
Progress = Callable[[str, int], None]
"""Called with an operator's ИНН and how many more of its accounts were answered."""


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
    must exhaust the iterator before it stores any of them (``load`` spools them).
    """
    from numident.messenger.accounts import validate_account_id

    problems = Problems(path)
    problem = problems.add
    now = clock.now()
    with _open_text(path) as handle, _SeenAccounts() as seen:
        reader = csv.reader(handle, strict=True)
        line = 1
        try:
            header = [name.strip().lower() for name in next(reader, [])]
            missing = [name for name in COLUMNS if name not in header]
            if missing:
                raise InvalidFile(str(path), [FileProblem(1, name, "column is missing from the "
                                                          "header") for name in missing])
            where = {name: header.index(name) for name in COLUMNS}
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) < len(header):
                    problem(line, COLUMNS[0], f"{len(row)} fields, the header has {len(header)}")
                    continue
                account_id = row[where["account_id"]]
                try:
                    validate_account_id(account_id)
                except NumidentError as exc:
                    problem(line, "account_id", exc.message)
                    continue
                try:
                    number = normalize(row[where["phone_number"]], default_region=default_region,
                                       allowed_regions=allowed_regions)
                except InvalidPhoneNumber as exc:
                    problem(line, "phone_number", exc.message)
                    continue
                proven = _proven_at(row[where["possession_proven_at"]], now)
                if isinstance(proven, str):
                    problem(line, "possession_proven_at", proven)
                    continue
                first = seen.first_line(account_id, line)
                if first is not None:
                    problem(line, "account_id", f"{account_id} is already given on line {first}")
                    continue
                if not problems.total:
                    yield Entry(line, account_id, number, proven)
        except csv.Error as exc:
            problem(line + 1, "-", f"not a readable CSV line: {exc}")
        except UnicodeDecodeError as exc:
            problem(line + 1, "-", f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    problems.raise_if_any()


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

    def first_line(self, account_id: str, line: int) -> int | None:
        """None the first time ``account_id`` is given (remembering ``line``), else the line
        that gave it first."""
        try:
            self._db.execute("INSERT INTO seen VALUES (?, ?)", (account_id, line))
        except sqlite3.IntegrityError:
            row = self._db.execute("SELECT line FROM seen WHERE account_id = ?",
                                   (account_id,)).fetchone()
            return int(row[0])
        return None

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


def load(engine: Engine, path: Path, routes: RouteMany, operators: OperatorDirectory,
         store: AccountStore, clock: Clock, *, default_region: str | None,
         allowed_regions: frozenset[str]) -> LoadReport:
    """Check the whole of ``path``, then store and route its accounts (module contract, 1).

    The checked rows are spooled to a temporary file, so that each number is parsed once and
    memory stays flat however long the file is.
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
        for entry in read_entries(path, clock, default_region=default_region,
                                  allowed_regions=allowed_regions):
            spool.write(f"{entry.account_id}\t{entry.phone_number}\t"
                        f"{entry.possession_proven_at.isoformat()}\n")
        spool.seek(0)
        report = LoadReport()
        chunk: list[Entry] = []
        for line, text_line in enumerate(spool):
            account_id, number, proven = text_line.rstrip("\n").split("\t")
            chunk.append(Entry(line, account_id, number, datetime.fromisoformat(proven)))
            if len(chunk) == CHUNK:
                _load_chunk(engine, chunk, routes, operators, store, clock, report)
                chunk = []
        if chunk:
            _load_chunk(engine, chunk, routes, operators, store, clock, report)
    return report


_INSERT_QUEUED = (
    "INSERT INTO bulk_identifications (account_id, phone_number, identification_code, "
    "possession_proven_at, operator_inn, operator_name, status, reason, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id) DO NOTHING")


def _load_chunk(engine: Engine, chunk: list[Entry], routes: RouteMany,
                operators: OperatorDirectory, store: AccountStore, clock: Clock,
                report: LoadReport) -> None:
    now = clock.now()
    routed = routes([entry.phone_number for entry in chunk])
    ids = [entry.account_id for entry in chunk]
    with engine.begin() as conn:
        held = set(conn.scalars(select(accounts.c.account_id)
                                .where(accounts.c.account_id.in_(ids))))
        loaded = set(conn.scalars(select(bulk.c.account_id).where(bulk.c.account_id.in_(ids))))
        rows: list[dict[str, Any]] = []
        for entry, route in zip(chunk, routed, strict=True):
            if entry.account_id in loaded:
                continue
            loaded.add(entry.account_id)  # a second line for the same account is ignored
            status, reason = QUEUED, None
            if entry.account_id in held:
                status, reason = SKIPPED, ACCOUNT_IN_SERVICE
            elif route.operator_inn is None:
                status, reason = AccountState.REFUSED.value, NO_OPERATOR
            elif route.operator_inn not in operators.endpoints:
                status, reason = AccountState.REFUSED.value, OPERATOR_NOT_CONFIGURED
            rows.append({
                "account_id": entry.account_id, "phone_number": entry.phone_number,
                "identification_code": new_identification_code(),
                "possession_proven_at": entry.possession_proven_at,
                "operator_inn": route.operator_inn, "operator_name": route.operator_name,
                "status": status, "reason": reason})
        stamp = timestamp_binder(conn, bulk.c.updated_at)
        if rows:
            conn.exec_driver_sql(driver_sql(conn, _INSERT_QUEUED), [
                (r["account_id"], r["phone_number"], r["identification_code"],
                 stamp(r["possession_proven_at"]), r["operator_inn"], r["operator_name"],
                 r["status"], r["reason"], stamp(now)) for r in rows])
        report.rows += len(chunk)
        report.added += len(rows)
        report.already_loaded += len(chunk) - len(rows)
        report.skipped += sum(1 for row in rows if row["status"] == SKIPPED)
        refused = [row for row in rows if row["status"] == AccountState.REFUSED.value]
        report.refused += len(refused)
        store.adopt(conn, [_adopted(row, AccountState.REFUSED, row["reason"], None)
                           for row in refused], now)


def _adopted(row: Mapping[str, Any], state: AccountState, reason: str | None,
             request_id: str | None) -> Adopted:
    """The account that a stored bulk row (a mapping of its columns) becomes when answered."""
    detail = {"event": "bulk_identification",
              "possessionProvenAt": rfc3339(row["possession_proven_at"])}
    if request_id:
        detail["requestId"] = request_id
    return Adopted(account_id=row["account_id"], phone_number=row["phone_number"],
                   identification_code=row["identification_code"], state=state, reason=reason,
                   operator_inn=row["operator_inn"], operator_name=row["operator_name"],
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

    async def run(self, progress: Progress | None = None) -> RunReport:
        report = RunReport()
        work = self.open_work()
        async with asyncio.TaskGroup() as group:
            for inn in work:
                report.operators[inn] = OperatorRun(inn)
                group.create_task(self._operator(inn, report.operators[inn], progress))
        return report

    async def _operator(self, inn: str, run: OperatorRun, progress: Progress | None) -> None:
        client = self._operators.client(inn)
        if client is None:  # the endpoint was removed from the config since the load
            run.stopped = OPERATOR_NOT_CONFIGURED
            return
        cursor = _Cursor()
        lock = asyncio.Lock()
        failing = _Failing()

        async def sender() -> None:
            while run.stopped is None:
                async with lock:
                    batch = self._next_batch(inn, cursor)
                if not batch:
                    return
                await self._send(client, inn, batch, run, failing, progress)

        async with asyncio.TaskGroup() as group:
            for _ in range(self._concurrency):
                group.create_task(sender())
        while run.stopped is None and await self._poll(client, inn, run, progress):
            await self._sleep(self._poll_seconds)

    def _next_batch(self, inn: str, cursor: _Cursor) -> list[Any]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(bulk).where(
                bulk.c.operator_inn == inn, bulk.c.status == QUEUED,
                bulk.c.account_id > cursor.after).order_by(bulk.c.account_id)
                .limit(self._batch_size)).all()
        if rows:
            cursor.after = rows[-1].account_id
        return list(rows)

    async def _send(self, client: Any, inn: str, batch: list[Any], run: OperatorRun,
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
                rows = list(conn.execute(select(bulk).where(
                    bulk.c.operator_inn == inn, bulk.c.status == PENDING,
                    bulk.c.account_id > cursor.after).order_by(bulk.c.account_id)
                    .limit(self._batch_size)).all())
            if not rows:
                return left
            cursor.after = rows[-1].account_id

            async def look(row: Any) -> _Outcome:
                async with limit:
                    reply = await client.fetch(row.request_id)
                now = self._clock.now()
                if isinstance(reply, Answer) and reply.result is not None:
                    return _outcome(reply, now)
                if now >= row.answer_due:
                    return _Outcome(AccountState.UNANSWERED.value, DEADLINE_PASSED)
                if isinstance(reply, Refused):
                    return _Outcome(AccountState.UNANSWERED.value, reply.reason)
                return _Outcome(PENDING, None, row.request_id, row.answer_due)

            outcomes = await asyncio.gather(*(look(row) for row in rows))
            left = left or any(o.status == PENDING for o in outcomes)
            self._record(inn, rows, list(outcomes), None, run, progress)

    def _record(self, inn: str, rows: Sequence[Any], outcomes: Sequence[_Outcome],
                sent_at: datetime | None, run: OperatorRun, progress: Progress | None) -> None:
        now = self._clock.now()
        with self._engine.begin() as conn:
            outcomes = self._after_notices(conn, inn, rows, outcomes)
            stamp = timestamp_binder(conn, bulk.c.updated_at)
            conn.exec_driver_sql(driver_sql(conn, _RECORD), [
                (o.status, o.reason, o.request_id, stamp(o.answer_due), stamp(sent_at),
                 stamp(now), r.account_id) for r, o in zip(rows, outcomes, strict=True)])
            final = [(r, o) for r, o in zip(rows, outcomes, strict=True)
                     if o.status != PENDING]
            adopted = self._store.adopt(conn, [
                _adopted(r._mapping, AccountState(o.status), o.reason, o.request_id)
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
            progress(inn, len(final))

    def _after_notices(self, conn: Connection, inn: str, rows: Sequence[Any],
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
