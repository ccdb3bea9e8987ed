"""Hostile routing files: every one is refused with its line and field, never a traceback.

Each test first loads good data, then offers a bad plan or ports file, and checks that the
refusal names the line and field and that routing still answers from the data loaded before.
A few run the real ``numident messenger import-*`` command as a subprocess: exit 2, a message
on stderr, no traceback.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from numident.errors import InvalidFile
from numident.routing.service import OperatorAliases, RoutingService
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade

MTS, BEELINE = "7740000076", "7713076301"
HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n"
PLAN = HEADER + (f'916;0000000;9999999;10000000;ПАО "МТС";г. Москва;Москва;{MTS}\n'
                 f'903;0000000;9999999;10000000;ПАО "ВымпелКом";г. Москва;Москва;{BEELINE}\n')
NATIONAL = "Number,OwnerId,MNC,Route,RegionCode,PortDate,RowCount\n"
PORTS = NATIONAL + "9161234567,mBEE,99,D2599,77,2025-11-01T10:00:00+03:00,1\n"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    upgrade(engine, "messenger")
    yield engine
    engine.dispose()


@pytest.fixture
def routing(engine: Engine, tmp_path: Path) -> RoutingService:
    """Routing with a small good plan and one ported number already active."""
    return routing_over(engine, tmp_path)


def routing_over(engine: Engine, tmp_path: Path) -> RoutingService:
    service = RoutingService(engine, {BEELINE: OperatorAliases(owner_ids=("mBEE",),
                                                                mncs=("99",))},
                             refresh_seconds=0)
    service.import_plan(write(tmp_path / "good-plan.csv", PLAN.encode()))
    service.import_ports(write(tmp_path / "Port_All_good.csv", PORTS.encode("cp1251")))
    return service


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def assert_untouched(routing: RoutingService) -> None:
    ported, plan = routing.route("+79161234567"), routing.route("+79031112233")
    assert (ported.source, ported.operator.key) == ("portability", BEELINE)  # type: ignore[union-attr]
    assert (plan.source, plan.operator.key) == ("plan", BEELINE)  # type: ignore[union-attr]
    assert routing.route("+79160000001").operator.key == MTS  # type: ignore[union-attr]


def refused(load: object, *args: object) -> InvalidFile:
    with pytest.raises(InvalidFile) as caught:
        load(*args)  # type: ignore[operator]
    return caught.value


def where(error: InvalidFile) -> tuple[int, str]:
    first = error.problems[0]
    return first.line, first.field


def plan_row(number_block: str = "917", name: str = 'ПАО "МТС"', inn: str = MTS) -> str:
    return f"{number_block};0000000;0000999;1000;{name};г. Москва;Москва;{inn}\n"


HOSTILE_PLANS: dict[str, tuple[bytes, tuple[int, str]]] = {
    "header only": (HEADER.encode(), (1, "(file)")),
    "UTF-16": ((HEADER + plan_row()).encode("utf-16"), (1, "(file)")),
    "binary": (random.Random(7).randbytes(4096), (1, "(file)")),
    "NUL in an operator name": ((HEADER + plan_row(name="МТ\x00С")).encode(), (2, "Оператор")),
    "a field over 128 KB": ((HEADER + plan_row(name="М" * 140_000)).encode(), (2, "Оператор")),
    "an undefined Windows-1251 byte": (
        (HEADER + plan_row()).encode("cp1251").replace(b"\xcc\xd2\xd1", b"\xcc\x98\xd1"),
        (2, "Оператор")),
}


@pytest.mark.parametrize("case", HOSTILE_PLANS)
def test_hostile_plan_files_are_refused_with_line_and_field(routing: RoutingService,
                                                            tmp_path: Path, case: str) -> None:
    """Empty, UTF-16, binary, NUL-bearing, oversized and undecodable plans change nothing."""
    data, expected = HOSTILE_PLANS[case]
    error = refused(routing.import_plan, write(tmp_path / "plan.csv", data))
    assert where(error) == expected
    assert_untouched(routing)


def test_one_bad_byte_in_a_large_utf8_plan_is_named(routing: RoutingService,
                                                    tmp_path: Path) -> None:
    """An 8 MB UTF-8 plan with one byte that is not UTF-8 is refused at that line, whole."""
    rows = [f"9{n // 1000:02d};{n % 1000:04d}000;{n % 1000:04d}999;1000;ПАО \"МТС\";"
            f"г. Москва;Москва;{MTS}\n" for n in range(100_000)]
    body = "".join(rows).encode()
    assert len(body) > 8_000_000
    bad_line = 76_543
    at = rows[bad_line - 2].encode().index("г.".encode())
    offset = sum(len(r.encode()) for r in rows[:bad_line - 2]) + at
    data = HEADER.encode() + body[:offset] + b"\xff" + body[offset + 1:]
    error = refused(routing.import_plan, write(tmp_path / "big.csv", data))
    assert where(error) == (bad_line, "Регион")
    assert "UTF-8" in error.problems[0].message
    assert_untouched(routing)


HOSTILE_PORTS: dict[str, tuple[str, tuple[int, str]]] = {
    "header only": (NATIONAL, (1, "(file)")),
    "a Kazakhstan number": (NATIONAL + "7012345678,mBEE,99,D2599,77,2025-11-01T10:00:00,1\n",
                            (2, "Number")),
    "a port in 2099": (NATIONAL + "9161234568,mBEE,99,D2599,77,2099-01-01T10:00:00,1\n",
                       (2, "PortDate")),
    "a port in 1800": (NATIONAL + "9161234568,mBEE,99,D2599,77,1800-01-01T10:00:00,1\n",
                       (2, "PortDate")),
    "NUL in the owner": (NATIONAL + "9161234568,mB\x00EE,99,D2599,77,2025-11-01T10:00:00,1\n",
                         (2, "OwnerId")),
    "a plain Kazakhstan number": ("number,operator,ported_at\n+77012345678,mBEE,\n",
                                  (2, "number")),
    "a plain number cut short": ("number,operator,ported_at\n+7916123456,mBEE,\n",
                                 (2, "number")),
}


HOSTILE_PORT_BYTES: dict[str, tuple[bytes, tuple[int, str]]] = {
    **{case: (text.encode("cp1251"), expected) for case, (text, expected) in HOSTILE_PORTS.items()},
    "UTF-16": (PORTS.encode("utf-16"), (1, "(file)")),
    "a field over 128 KB": ((NATIONAL + "9161234568," + "m" * 140_000 +
                             ",99,D2599,77,2025-11-01T10:00:00,1\n").encode(), (2, "OwnerId")),
    "a cut RowCount export": ((NATIONAL + "9161234568,mBEE,99,D2599,77,2025-11-01T10:00:00,2\n"
                               ).encode(), (2, "RowCount")),
}


@pytest.mark.parametrize("case", HOSTILE_PORT_BYTES)
def test_hostile_ports_files_are_refused_with_line_and_field(routing: RoutingService,
                                                             tmp_path: Path, case: str) -> None:
    """Foreign numbers, impossible dates, NULs, cut and empty snapshots change nothing."""
    data, expected = HOSTILE_PORT_BYTES[case]
    error = refused(routing.import_ports, write(tmp_path / "Port_All_bad.csv", data))
    assert where(error) == expected
    assert_untouched(routing)


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``numident messenger ARGS`` on ``home``, its database migrated first."""
    for command in (["migrate"], list(args)):
        result = subprocess.run([sys.executable, "-m", "numident", "messenger", *command],
                                env={**os.environ, "NUMIDENT_HOME": str(home)},
                                capture_output=True, text=True, timeout=120, check=False)
    return result


@pytest.mark.parametrize(("command", "data", "named"), [
    ("import-plan", HEADER.encode(), "no rows"),
    ("import-plan", (HEADER + plan_row()).encode("utf-16"), "UTF-16"),
    ("import-plan", bytes(range(256)) * 64, "line 1"),
    ("import-ports", f"number,operator,ported_at\n+77012345678,{BEELINE},\n".encode(),
     "line 2, field 'number'"),
])
def test_the_cli_exits_2_naming_why_and_keeps_the_loaded_data(tmp_path: Path, command: str,
                                                              data: bytes, named: str) -> None:
    """The real command refuses a hostile file with exit 2 and a message, not a traceback."""
    home = tmp_path / "home"
    engine = create_database_engine(f"sqlite:///{home / 'messenger.db'}")
    try:
        upgrade(engine, "messenger")
        before = routing_over(engine, tmp_path)
        result = run_cli(home, command, str(write(tmp_path / "Port_All_x.csv", data)))
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert named in result.stderr
        assert_untouched(before)
    finally:
        engine.dispose()


def test_the_cli_refuses_a_shrinking_snapshot_until_allowed(tmp_path: Path) -> None:
    """A Port_All with far fewer ports than the active one exits 2; --allow-shrink loads it."""
    home = tmp_path / "home"
    engine = create_database_engine(f"sqlite:///{home / 'messenger.db'}")
    try:
        upgrade(engine, "messenger")
        routing = routing_over(engine, tmp_path)
        routing.import_ports(write(tmp_path / "Port_All_many.csv", (
            "number,operator,ported_at\n" + "".join(
                f"+7916{n:07d},{BEELINE},\n" for n in range(1_234_560, 1_234_580))).encode()))
        few = write(tmp_path / "Port_All_few.csv", PORTS.encode("cp1251"))
        refused_run = run_cli(home, "import-ports", str(few))
        assert refused_run.returncode == 2, refused_run.stderr
        assert "from 20 to 1 numbers" in refused_run.stderr
        assert "--allow-shrink" in refused_run.stderr
        assert routing.route("+79161234570").source == "portability"
        allowed = run_cli(home, "import-ports", "--allow-shrink", str(few))
        assert allowed.returncode == 0, allowed.stderr
        assert routing.route("+79161234570").source == "plan"
        assert_untouched(routing)
    finally:
        engine.dispose()
