"""Routing loads that meet: serialised by the load lock, and snapshots that must be whole.

Two real loads run at once in threads, each with its own service and connections, on SQLite
and PostgreSQL. The first pauses after writing its rows and before switching them on, until
the second has either finished or been made to wait; without the lock the second would run
inside the first and one of them would be lost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from numident.errors import Conflict, InvalidFile
from numident.routing.lock import LoadLock
from numident.routing.service import ImportReport, RoutingService
from numident.routing.tables import routing_ports
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

MTS, BEELINE, T2 = "7740000076", "7713076301", "7743895280"
HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n"
PLAIN = "number,operator,ported_at\n"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    upgrade(engine, "messenger")
    yield engine
    engine.dispose()


def service(engine: Engine, load_wait_seconds: float = 300.0) -> RoutingService:
    return RoutingService(engine, refresh_seconds=0, load_wait_seconds=load_wait_seconds)


@pytest.fixture
def routing(engine: Engine, tmp_path: Path) -> RoutingService:
    """A plan of MTS for +7 900..999 with T2 and Beeline known as operators."""
    loaded = service(engine)
    plan = HEADER + "".join(f'{code};0000000;9999999;10000000;ПАО "МТС";М;М;{MTS}\n'
                            for code in range(900, 1000))
    plan += f"800;0000000;0000009;10;Т2;М;М;{T2}\n801;0000000;0000009;10;Б;М;М;{BEELINE}\n"
    loaded.import_plan(write(tmp_path / "plan.csv", plan))
    return loaded


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def ports(tmp_path: Path, name: str, numbers: range, inn: str) -> Path:
    return write(tmp_path / name, PLAIN + "".join(f"+7916{n:07d},{inn},\n" for n in numbers))


def operator_of(routing: RoutingService, n: int) -> str:
    result = routing.route(f"+7916{n:07d}")
    assert result.operator is not None
    return result.operator.key if result.source == "portability" else "plan"


def active_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(routing_ports)).scalar_one())


def run_meeting(first: Callable[[Callable[[], None]], ImportReport],
                second: Callable[[Callable[[str], None]], ImportReport]
                ) -> tuple[ImportReport, ImportReport | BaseException]:
    """Run ``first``; once it has written its rows, run ``second`` in another thread.

    ``first`` gets a ``before_switch`` callback that holds it until ``second`` has finished or said
    that it waits for the lock; ``second`` gets that waiting callback.
    """
    second_met = threading.Event()
    outcome: list[ImportReport | BaseException] = []

    def run_second() -> None:
        try:
            outcome.append(second(lambda _holder: second_met.set()))
        except BaseException as exc:  # handed to the test thread, which asserts on it
            outcome.append(exc)
        finally:
            second_met.set()

    thread = threading.Thread(target=run_second)

    def pause() -> None:
        if not thread.is_alive() and not outcome:
            thread.start()
            assert second_met.wait(60), "the second load neither finished nor waited"

    try:
        report = first(pause)
    finally:
        if thread.is_alive() or not outcome:
            thread.join(120)
    assert outcome, "the second load never ran"
    return report, outcome[0]


def test_two_concurrent_full_loads_run_one_after_the_other(
        routing: RoutingService, engine: Engine, tmp_path: Path) -> None:
    """The second full load waits for the first; it ends active, whole, in its own generation."""
    first_file = ports(tmp_path, "Port_All_a.csv", range(0, 3000), BEELINE)
    second_file = ports(tmp_path, "Port_All_b.csv", range(1000, 4000), T2)
    other = service(engine)
    first, second = run_meeting(
        lambda progress: routing.import_ports(first_file, before_switch=progress),
        lambda waiting: other.import_ports(second_file, waiting=waiting))
    assert isinstance(second, ImportReport), second
    assert second.generation > first.generation
    assert [operator_of(routing, n) for n in (500, 1500, 3500)] == ["plan", T2, T2]
    assert active_rows(engine) == 3000


def test_an_increment_during_a_full_load_is_applied_on_top_of_it(
        routing: RoutingService, engine: Engine, tmp_path: Path) -> None:
    """An increment that arrives during a full load is applied to the new generation."""
    routing.import_ports(ports(tmp_path, "Port_All_0.csv", range(0, 3000), T2))
    full = ports(tmp_path, "Port_All_a.csv", range(0, 3000), BEELINE)
    increment = ports(tmp_path, "Port_Increment_1.csv", range(2500, 3500), T2)
    other = service(engine)
    full_report, increment_report = run_meeting(
        lambda progress: routing.import_ports(full, before_switch=progress),
        lambda waiting: other.import_ports(increment, waiting=waiting))
    assert isinstance(increment_report, ImportReport), increment_report
    assert increment_report.generation == full_report.generation
    assert [operator_of(routing, n) for n in (100, 2600, 3400)] == [BEELINE, T2, T2]
    assert active_rows(engine) == 3500


def test_a_second_load_gives_up_after_its_wait_naming_the_running_load(
        routing: RoutingService, engine: Engine, tmp_path: Path) -> None:
    """A load that cannot get the lock in time is refused and changes nothing."""
    first_file = ports(tmp_path, "Port_All_a.csv", range(0, 3000), BEELINE)
    second_file = ports(tmp_path, "Port_All_b.csv", range(1000, 4000), T2)
    impatient = service(engine, load_wait_seconds=0.3)
    _, second = run_meeting(
        lambda progress: routing.import_ports(first_file, before_switch=progress),
        lambda _waiting: impatient.import_ports(second_file))
    assert isinstance(second, Conflict), second
    assert second.code == "ROUTING_LOAD_RUNNING"
    assert "Port_All_a.csv" in second.message
    assert [operator_of(routing, n) for n in (500, 3500)] == [BEELINE, "plan"]


def test_a_load_that_stalled_past_its_lease_is_overtaken_and_fenced_off(engine: Engine) -> None:
    """After the lease runs out another load may take it; the stalled one can renew no more."""
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    stalled = LoadLock(engine, lease_seconds=60, clock=lambda: now[0])
    taker = LoadLock(engine, lease_seconds=60, clock=lambda: now[0])
    old = stalled.acquire("ports full load of a.csv", wait_seconds=0)
    with pytest.raises(Conflict):
        taker.acquire("ports full load of b.csv", wait_seconds=0)
    now[0] += timedelta(seconds=61)
    new = taker.acquire("ports full load of b.csv", wait_seconds=0)
    assert new.fence == old.fence + 1
    with engine.begin() as conn, pytest.raises(Conflict) as caught:
        stalled.renew(conn, old)
    assert caught.value.code == "ROUTING_LOAD_OVERTAKEN"
    stalled.release(old)  # gives up nothing that is not its own
    with pytest.raises(Conflict):
        LoadLock(engine, clock=lambda: now[0]).acquire("plan", wait_seconds=0)
    taker.release(new)
    LoadLock(engine, clock=lambda: now[0]).acquire("plan", wait_seconds=0)


def test_a_full_snapshot_that_shrinks_the_ports_too_much_needs_allow_shrink(
        routing: RoutingService, engine: Engine, tmp_path: Path) -> None:
    """Losing more than the allowed share of the active ports is refused unless allowed."""
    routing.import_ports(ports(tmp_path, "Port_All_1.csv", range(0, 1000), BEELINE))
    shrunk = ports(tmp_path, "Port_All_2.csv", range(0, 899), T2)
    with pytest.raises(InvalidFile) as caught:
        routing.import_ports(shrunk)
    assert "from 1000 to 899" in caught.value.problems[0].message
    assert "--allow-shrink" in caught.value.problems[0].message
    assert active_rows(engine) == 1000
    assert operator_of(routing, 10) == BEELINE
    routing.import_ports(ports(tmp_path, "Port_All_3.csv", range(0, 900), T2))
    assert operator_of(routing, 10) == T2
    routing.import_ports(ports(tmp_path, "Port_All_4.csv", range(0, 10), BEELINE),
                         allow_shrink=True)
    assert active_rows(engine) == 10


def test_a_plan_that_drops_ranges_beyond_the_limit_is_refused(
        routing: RoutingService, tmp_path: Path) -> None:
    """A plan cut at a line end routes fewer numbers than the active one: refused."""
    cut = HEADER + "".join(f'{code};0000000;9999999;10000000;ПАО "МТС";М;М;{MTS}\n'
                           for code in range(900, 980))
    with pytest.raises(InvalidFile) as caught:
        routing.import_plan(write(tmp_path / "cut.csv", cut))
    assert "would no longer route" in caught.value.problems[0].message
    assert routing.route("+79991234567").operator.key == MTS  # type: ignore[union-attr]
    report = routing.import_plan(write(tmp_path / "cut.csv", cut), allow_shrink=True)
    assert report.rows == 80
    assert routing.route("+79991234567").operator is None
