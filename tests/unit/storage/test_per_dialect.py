"""Statements built once per dialect (``per_dialect``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from numident.storage.dialect import per_dialect


def connection(name: str) -> Any:
    return SimpleNamespace(dialect=SimpleNamespace(name=name))


def test_a_statement_is_built_once_for_each_dialect_and_kept() -> None:
    built: list[str] = []

    @per_dialect
    def statement(conn: Any) -> tuple[str, int]:
        built.append(conn.dialect.name)
        return (conn.dialect.name, len(built))

    assert statement(connection("sqlite")) == ("sqlite", 1)
    assert statement(connection("postgresql")) == ("postgresql", 2)
    assert statement(connection("sqlite")) is statement(connection("sqlite"))
    assert statement(connection("postgresql")) == ("postgresql", 2)
    assert built == ["sqlite", "postgresql"]
