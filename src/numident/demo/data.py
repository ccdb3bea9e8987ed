"""The demo's synthetic world: three operators, their number ranges, subscribers, one port."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n"


@dataclass(frozen=True)
class DemoOperator:
    key: str
    inn: str
    name: str
    region: str
    def_code: int
    deferred: bool
    subscribers: tuple[tuple[str, str], ...]
    """(number, status) rows of this operator's billing export."""


CLI_NUMBER = "+79165550009"
"""A subscriber of Alfa's that the story leaves alone, to be identified with the CLI."""

OPERATORS = (
    DemoOperator("alfa", "7700000016", 'ПАО "Альфа Мобайл"', "г. Москва", 916, False,
                 (("+79165550001", "active"), ("+79165550004", "active"),
                  ("+79165550010", "active"), (CLI_NUMBER, "active"))),
    DemoOperator("beta", "7700000023", 'ООО "Бета Телеком"', "Санкт-Петербург", 917, False,
                 (("+79165550002", "active"), ("+79175550005", "active"),
                  ("+79175550006", "active"))),
    DemoOperator("gamma", "7700000030", 'АО "Гамма Связь"', "Новосибирская обл.", 918, True,
                 (("+79185550007", "active"), ("+79185550008", "terminated"))),
)

PORTED = (("+79165550002", "7700000023", "2025-05-01T00:00:00Z"),)
"""A number of Alfa's range that moved to Beta: routing must follow the port, not the plan."""


def write_plan(path: Path) -> Path:
    """A numbering plan in the national registry's format (semicolons, Cyrillic header)."""
    rows = [f"{op.def_code};0000000;9999999;10000000;{op.name};{op.region};{op.region};{op.inn}\n"
            for op in OPERATORS]
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def write_ports(path: Path) -> Path:
    path.write_text("number,operator,ported_at\n" + "".join(
        f"{number},{inn},{when}\n" for number, inn, when in PORTED), encoding="utf-8")
    return path


def write_subscribers(operator: DemoOperator, path: Path) -> Path:
    path.write_text("phone_number,contract_id,status,activated_at\n" + "".join(
        f"{number},{operator.key.upper()}-{i:04d},{status},2024-01-15\n"
        for i, (number, status) in enumerate(operator.subscribers)), encoding="utf-8")
    return path
