"""The wire modules ``numident.client`` uses import no server dependency (base install only)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import numident.wire

ALLOWED = ("cloudevents", "numident.core", "numident.errors")
CLIENT_SIDE = ("answer", "bearer", "notice")


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CLIENT_SIDE)
def test_a_client_side_wire_module_imports_only_the_base_install(module: str) -> None:
    """Every import is the standard library, the CloudEvents SDK, numident.core or errors."""
    path = Path(numident.wire.__file__).parent / f"{module}.py"
    outside = {name for name in imported(path)
               if name.split(".")[0] not in sys.stdlib_module_names
               and not any(name == a or name.startswith(a + ".") for a in ALLOWED)}
    assert outside == set()
