"""``numident.core`` holds the rules and imports nothing but the standard library and itself.

No framework (FastAPI, Starlette, pydantic, Typer), no database driver or SQLAlchemy, no HTTP
client, no other part of numident (``web``, ``operator``, ``messenger``, ``storage``,
``camara``, ``client``...): the rules run, and are tested, without any of them. Every import of
every core module is read from its syntax tree, those inside functions and ``TYPE_CHECKING``
blocks included.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest

import numident.core

ALLOWED = frozenset({
    "__future__", "asyncio", "collections", "dataclasses", "datetime", "enum", "functools",
    "math", "re", "secrets", "typing",
    # libphonenumber's numbering metadata and parser: data and pure functions, no I/O.
    "phonenumbers",
})
"""The modules outside numident that core may import (top-level names)."""
ALLOWED_NUMIDENT = ("numident.core", "numident.errors")
"""The numident modules core may import: itself, and the exception tree (which knows no
transport: HTTP statuses are mapped in ``numident.web.errors``)."""

CORE = Path(numident.core.__file__).parent
MODULES = sorted(f"numident.core.{m.name}" for m in pkgutil.iter_modules([str(CORE)]))


def imported(source: str, module: str) -> list[str]:
    """Every module name that ``source`` (the text of ``module``) imports, absolute."""
    package = module.rsplit(".", 1)[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.append(f"{base}.{node.module}" if node.module else base)
            else:
                names.append(node.module or "")
    return names


def refused(name: str) -> bool:
    if name.split(".")[0] == "numident":
        return not any(name == allowed or name.startswith(f"{allowed}.")
                       for allowed in ALLOWED_NUMIDENT)
    return name.split(".")[0] not in ALLOWED


def test_core_has_modules() -> None:
    """The walk below sees the rules (an empty list would pass anything)."""
    assert {"numident.core.registry", "numident.core.usages", "numident.core.follow_up",
            "numident.core.accounts"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_core_module_imports_no_framework_driver_or_outer_layer(module: str) -> None:
    """A core module imports only the standard library, phonenumbers, core and the errors."""
    source = (CORE / f"{module.rsplit('.', 1)[1]}.py").read_text(encoding="utf-8")
    assert [name for name in imported(source, module) if refused(name)] == []


@pytest.mark.parametrize(("line", "bad"), [
    ("import sqlalchemy", True),
    ("from fastapi import Request", True),
    ("import httpx2", True),
    ("from numident.web.errors import http_status", True),
    ("from numident.operator import events", True),
    ("from numident import storage", True),
    ("from ..camara import holders", True),
    ("from .notices import NoticeType", False),
    ("from numident.errors import Conflict", False),
    ("from datetime import datetime", False),
])
def test_the_walk_tells_a_bad_import(line: str, bad: bool) -> None:
    """The check itself: a framework, a driver, an HTTP client or an outer layer is refused."""
    assert any(refused(n) for n in imported(line, "numident.core.example")) is bad
