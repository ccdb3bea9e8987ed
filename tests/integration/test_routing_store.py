"""Routing data in SQLite and PostgreSQL: loads, increments, rejects, and the atomic switch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from numident.errors import InvalidFile
from numident.routing.service import OperatorAliases, RoutingService
from numident.routing.tables import routing_ports
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

MTS, BEELINE, T2 = "7740000076", "7713076301", "7743895280"
PLAIN = "number,operator,ported_at\n"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    upgrade(engine, "messenger")
    yield engine
    engine.dispose()


@pytest.fixture
def routing(engine: Engine, real_plan: Path) -> RoutingService:
    service = RoutingService(engine, {BEELINE: OperatorAliases(owner_ids=("mBEE",),
                                                                mncs=("99",))},
                             refresh_seconds=0)
    service.import_plan(real_plan)
    return service


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_real_plan_routes_numbers_to_their_registry_operator(routing: RoutingService) -> None:
    """After the real plan is loaded a number routes to the operator of its range."""
    result = routing.route("+79000000001")
    assert result.operator is not None
    assert (result.operator.key, result.region, result.source) == (
        T2, "Краснодарский край", "plan")
    assert routing.route("+79161234567").operator.key == MTS  # type: ignore[union-attr]


def test_full_load_then_increment(routing: RoutingService, tmp_path: Path) -> None:
    """A snapshot replaces all ports; an increment changes only its numbers."""
    routing.import_ports(write(tmp_path, "Port_All_1.csv", PLAIN +
                               f"+79161234567,{BEELINE},2025-01-01T00:00:00Z\n"
                               f"+79161234568,{BEELINE},2025-01-01T00:00:00Z\n"))
    assert routing.route("+79161234567").source == "portability"
    routing.import_ports(write(tmp_path, "Port_Increment_1.csv",
                               "Number,OwnerId,MNC,Route,RegionCode,PortDate,RowCount\n"
                               "9161234568,m?,01,D,77,2026-01-01T00:00:00,2\n"
                               "9001234567,mBEE,99,D,77,2026-01-01T00:00:00,\n"
                               .replace("m?", "mBEE").replace(",01,", ",99,")))
    assert routing.route("+79001234567").operator.key == BEELINE  # type: ignore[union-attr]
    assert routing.route("+79161234567").source == "portability"
    routing.import_ports(write(tmp_path, "Port_All_2.csv", PLAIN +
                               f"+79031112233,{BEELINE},\n"), allow_shrink=True)
    assert routing.route("+79161234567").source == "plan"
    assert routing.route("+79031112233").source == "portability"
    with routing.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(routing_ports)).scalar_one() == 1


def test_rejected_file_leaves_the_previous_data_active(routing: RoutingService,
                                                       tmp_path: Path) -> None:
    """A bad ports file or plan changes nothing that is stored or served."""
    routing.import_ports(write(tmp_path, "ports.csv", PLAIN + f"+79161234567,{BEELINE},\n"))
    with pytest.raises(InvalidFile):
        routing.import_ports(write(tmp_path, "bad.csv", PLAIN + f"+79031112233,{BEELINE},\n"
                                   "+7903111223X,mBEE,\n"))
    with pytest.raises(InvalidFile):
        routing.import_plan(write(tmp_path, "plan.csv", "АВС/ DEF;От;До\n"))
    assert routing.route("+79161234567").source == "portability"
    assert routing.route("+79031112233").source == "plan"
    assert routing.route("+79000000001").operator.key == T2  # type: ignore[union-attr]


def test_unknown_owner_is_refused_with_its_line(routing: RoutingService, tmp_path: Path) -> None:
    """A port to an operator the directory does not know is a bad row, not a guess."""
    with pytest.raises(InvalidFile) as caught:
        routing.import_ports(write(tmp_path, "ports.csv", PLAIN + "+79161234567,mNOBODY,\n"))
    assert (caught.value.problems[0].line, caught.value.problems[0].field) == (2, "operator")


def test_routing_stays_complete_while_a_reload_switches(routing: RoutingService,
                                                        tmp_path: Path, engine: Engine) -> None:
    """A reader during a full reload sees the old or the new data, never a gap."""
    first = write(tmp_path, "a.csv", PLAIN + "".join(
        f"+7916{n:07d},{BEELINE},\n" for n in range(3000)))
    second = write(tmp_path, "b.csv", PLAIN + "".join(
        f"+7916{n:07d},{T2},\n" for n in range(3000)))
    routing.import_ports(first)
    reader = RoutingService(engine, refresh_seconds=0)
    seen: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            result = reader.route("+79160001234")
            seen.add(result.operator.key if result.operator else "none")

    thread = threading.Thread(target=read)
    thread.start()
    try:
        routing.import_ports(second)
        routing.import_ports(first)
    finally:
        stop.set()
        thread.join()
    assert seen <= {BEELINE, T2}
    assert reader.route("+79160001234").operator.key == BEELINE  # type: ignore[union-attr]
