"""The import's chunked switch: every chunk whole, interrupted switches rolled forward."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from operator_harness import Harness, HarnessFactory
from sqlalchemy import Engine, func, select, update

from numident.core.notices import NoticeType
from numident.operator import events, registry_switch
from numident.operator.bootstrap import lifecycle_handlers
from numident.operator.registry_switch import LEASE, Pace
from numident.operator.tables import (
    outbox,
    subscriber_history,
    subscriber_import_rows,
    subscriber_imports,
    subscribers,
    usages,
)

pytestmark = pytest.mark.anyio
HEADER = "phone_number,contract_id,status,activated_at\n"
LINES = 12
HANDLERS = lifecycle_handlers()


class Crash(Exception):
    """Stands for the import's process dying between two transactions."""


@dataclass(frozen=True)
class Scripted(Pace):
    """Two rows per transaction, no pause; the ``at``-th pause (from 1) runs ``then``."""

    at: int = 0
    then: object = None
    pauses: list[int] = field(default_factory=list)
    target_seconds: float = 1.0
    first_rows: int = 2
    min_rows: int = 2
    max_rows: int = 2

    def pause(self, engine: Engine, held: float) -> None:
        self.pauses.append(1)
        if len(self.pauses) == self.at and callable(self.then):
            self.then()


@dataclass(frozen=True)
class Slow(Scripted):
    """Two rows per transaction and a real pause: two completers overlap."""

    def pause(self, engine: Engine, held: float) -> None:
        time.sleep(0.05)


def crash() -> None:
    raise Crash


def number(n: int) -> str:
    return f"+7916{n:07d}"


def export(changed: bool) -> str:
    """LINES active contracts; ``changed``: even ones ended, odd ones given a new contract."""
    rows = [f"{number(n)},C-{n},terminated,2020-01-01" if changed and n % 2 == 0 else
            f"{number(n)},C-{n}-new,active,2026-11-01" if changed else
            f"{number(n)},C-{n},active,2020-01-01" for n in range(LINES)]
    return HEADER + "\n".join(rows) + "\n"


async def loaded(make_gateway: HarnessFactory) -> Harness:
    """A registry of LINES contracts, each identified once (an active usage each)."""
    h: Harness = await make_gateway()
    h.import_csv(export(changed=False))
    for n in range(LINES):
        assert (await h.identify(number(n), f"u-{n}")).json()["result"] == "confirmed"
    return h


def state(h: Harness) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str]], int]:
    """The registry, the (number, code) of every notice, and the active usages left."""
    with h.gateway.engine.connect() as conn:
        rows = {r.phone_number: (r.contract_id, r.status)
                for r in conn.execute(select(subscribers))}
        notices = sorted((d["phoneNumber"], d["identificationCode"]) for d in (
            json.loads(p)["data"] for p in conn.execute(select(outbox.c.payload)).scalars()))
        active = conn.execute(select(func.count()).select_from(usages)
                              .where(usages.c.status == "active")).scalar_one()
    return rows, notices, int(active)


def journal(h: Harness) -> list[tuple[str, int, int]]:
    with h.gateway.engine.connect() as conn:
        return [(r.state, r.applied, r.row_count) for r in conn.execute(
            select(subscriber_imports).order_by(subscriber_imports.c.id))]


def lose_heartbeat(h: Harness) -> None:
    """Age every journal's heartbeat past the lease, as if its process had died that long ago."""
    with h.gateway.engine.begin() as conn:
        conn.execute(update(subscriber_imports).values(
            heartbeat_at=datetime.now(UTC) - LEASE - timedelta(seconds=1)))


EVERY_NOTICE = sorted((number(n), f"u-{n}") for n in range(LINES))


def changed_registry() -> dict[str, tuple[str, str]]:
    return {number(n): (f"C-{n}", "terminated") if n % 2 == 0 else (f"C-{n}-new", "active")
            for n in range(LINES)}


async def test_a_switch_in_many_transactions_applies_every_row_with_one_notice_each(
        make_gateway: HarnessFactory) -> None:
    """Switched two rows at a time, the delta ends as one transaction would have left it:
    every row changed, its history added, one notice per ended usage, the journal done."""
    h = await loaded(make_gateway)
    report = h.import_csv(export(changed=True), pace=Scripted())
    assert (report.rows, report.updated, report.notices) == (LINES, LINES, LINES)
    rows, notices, active = state(h)
    assert rows == changed_registry()
    assert notices == EVERY_NOTICE
    assert active == 0
    assert journal(h)[-1] == ("done", LINES, LINES)
    with h.gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subscriber_import_rows)
                            ).scalar_one() == 0


async def test_an_import_that_dies_mid_switch_is_completed_by_the_next_one(
        make_gateway: HarnessFactory) -> None:
    """Killed after two of its six chunks, the import has changed exactly those four numbers
    with their four notices; the next import (the same file) completes the rest first, and
    every changed contract has exactly one notice."""
    h = await loaded(make_gateway)
    publish_pauses = LINES // 2
    with pytest.raises(Crash):
        h.import_csv(export(changed=True), pace=Scripted(at=publish_pauses + 2, then=crash))
    assert journal(h)[-1] == ("switching", 4, LINES)
    rows, notices, active = state(h)
    assert rows == {**{number(n): (f"C-{n}", "active") for n in range(LINES)},
                    **{k: v for k, v in changed_registry().items() if k < number(4)}}
    assert notices == EVERY_NOTICE[:4]
    assert active == LINES - 4
    again = h.import_csv(export(changed=True))
    assert [(r.rows, r.updated, r.notices) for r in again.resumed] == [(LINES, LINES, LINES)]
    assert (again.updated, again.unchanged, again.notices) == (0, LINES, 0)
    rows, notices, active = state(h)
    assert rows == changed_registry()
    assert notices == EVERY_NOTICE
    assert active == 0
    assert [s for s, _, _ in journal(h)] == ["done", "done", "done"]


async def test_the_gateway_completes_a_switch_whose_process_is_gone(
        make_gateway: HarnessFactory) -> None:
    """A journal still switching is left alone while its heartbeat is fresh, and completed
    by the gateway's recovery once it is a lease old."""
    h = await loaded(make_gateway)
    with pytest.raises(Crash):
        h.import_csv(export(changed=True), pace=Scripted(at=LINES // 2 + 1, then=crash))
    engine = h.gateway.engine
    assert registry_switch.complete(engine, stale_only=True, handlers=HANDLERS) == []
    lose_heartbeat(h)
    [completed] = registry_switch.complete(engine, stale_only=True, handlers=HANDLERS)
    assert (completed.rows, completed.updated, completed.notices) == (LINES, LINES, LINES)
    rows, notices, _ = state(h)
    assert rows == changed_registry()
    assert notices == EVERY_NOTICE


async def test_an_import_killed_while_publishing_changes_nothing_and_is_discarded(
        make_gateway: HarnessFactory) -> None:
    """Killed before its switch began, the import leaves the registry and outbox as they
    were; once its heartbeat is a lease old the next import discards its staged rows."""
    h = await loaded(make_gateway)
    before = state(h)
    with pytest.raises(Crash):
        h.import_csv(export(changed=True), pace=Scripted(at=2, then=crash))
    assert state(h) == before
    assert journal(h)[-1] == ("staging", 0, LINES)
    lose_heartbeat(h)
    report = h.import_csv(export(changed=False))
    assert (report.resumed, report.unchanged, report.notices) == ([], LINES, 0)
    assert state(h) == before
    assert journal(h)[1][0] == "abandoned"
    with h.gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subscriber_import_rows)
                            ).scalar_one() == 0


async def test_a_lifecycle_event_recorded_during_the_switch_is_not_overwritten(
        make_gateway: HarnessFactory) -> None:
    """A number reassigned by an event after the import began keeps the event's contract:
    the export is older. Its usage was announced once, by the event."""
    h = await loaded(make_gateway)
    late = number(LINES - 1)

    def reassign() -> None:
        events.record_event(h.gateway.engine, NoticeType.NUMBER_REASSIGNED, late,
                            occurred_at=h.clock.now(), recorded_at=h.clock.now(),
                            source="admin", notice_source="http://gateway.test",
                            handlers=h.gateway.lifecycle, new_contract_id="C-event")

    report = h.import_csv(export(changed=True), pace=Scripted(at=LINES // 2 + 1, then=reassign))
    assert (report.updated, report.superseded, report.notices) == (LINES - 1, 1, LINES - 1)
    rows, notices, active = state(h)
    assert rows[late] == ("C-event", "active")
    assert rows == {**changed_registry(), late: ("C-event", "active")}
    assert notices == EVERY_NOTICE
    assert active == 0
    with h.gateway.engine.connect() as conn:
        changes = conn.execute(select(subscriber_history.c.change)
                               .where(subscriber_history.c.phone_number == late)
                               .order_by(subscriber_history.c.id)).scalars().all()
    assert changes == ["import", "number_reassigned"]


async def test_two_processes_completing_one_switch_apply_each_chunk_once(
        make_gateway: HarnessFactory) -> None:
    """Two completers racing over one interrupted switch (the gateway and the next import,
    say) claim its chunks from each other: every row is applied once, every usage announced
    once."""
    h = await loaded(make_gateway)
    with pytest.raises(Crash):
        h.import_csv(export(changed=True), pace=Scripted(at=LINES // 2 + 1, then=crash))
    engine = h.gateway.engine
    with ThreadPoolExecutor(2) as pool:
        finished = list(pool.map(lambda _: registry_switch.complete(engine, pace=Slow(),
                                                                     handlers=HANDLERS),
                                 range(2)))
    assert [(s.rows, s.updated, s.notices) for s in finished[0] + finished[1]] == [
        (LINES, LINES, LINES)] * 2
    rows, notices, active = state(h)
    assert rows == changed_registry()
    assert notices == EVERY_NOTICE
    assert active == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subscriber_history)
                            ).scalar_one() == 2 * LINES


async def test_an_export_listing_what_an_event_recorded_changes_nothing(
        make_gateway: HarnessFactory) -> None:
    """An event's new contract, active from a whole second, and the next export listing that
    same contract and second: the line is unchanged, whichever path wrote its time."""
    h = await loaded(make_gateway)
    reassigned = number(0)
    h.gateway.record_event(NoticeType.NUMBER_REASSIGNED, reassigned, source="admin",
                           occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
                           new_contract_id="C-0-new")
    listed = export(changed=False).replace(f"{reassigned},C-0,active,2020-01-01",
                                           f"{reassigned},C-0-new,active,2026-11-01")
    report = h.import_csv(listed)
    assert (report.inserted, report.updated, report.unchanged) == (0, 0, LINES)
