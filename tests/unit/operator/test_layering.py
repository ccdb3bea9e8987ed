"""The operator's modules do not know the CAMARA APIs: those plug in at the composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import numident.operator

OPERATOR = Path(numident.operator.__file__).parent
COMPOSITION_ROOT = {"app.py", "bootstrap.py"}
"""Where the CAMARA APIs' routes, senders and lifecycle handlers are plugged in."""


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (relative imports resolved)."""
    package = "numident.operator"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def camara_imports(path: Path) -> set[str]:
    return {name for name in imported_modules(path)
            if name == "numident.camara" or name.startswith("numident.camara.")}


def test_no_operator_module_imports_camara_but_the_composition_root() -> None:
    """``numident.operator`` imports ``numident.camara`` only in ``app.py`` and ``bootstrap.py``."""
    offenders = {path.name: sorted(camara_imports(path))
                 for path in sorted(OPERATOR.glob("*.py"))
                 if path.name not in COMPOSITION_ROOT and camara_imports(path)}
    assert offenders == {}


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    """A plain, a from- and a function-local import of camara are all found."""
    module = tmp_path / "bad.py"
    module.write_text("import numident.camara.app\n"
                      "from numident.camara import sim_swap_events\n"
                      "def later():\n"
                      "    from numident.camara.tables import sim_swap_subscriptions\n",
                      encoding="utf-8")
    assert camara_imports(module) == {
        "numident.camara.app", "numident.camara", "numident.camara.sim_swap_events",
        "numident.camara.tables", "numident.camara.tables.sim_swap_subscriptions"}
