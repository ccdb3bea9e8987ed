"""Fixtures shared by every test layer.

``database_url`` parametrises a test over both stores: a fresh SQLite file and a fresh
PostgreSQL database (created on the local server and dropped afterwards, under a unique name
so that concurrent runs on one server never meet). Set ``NUMIDENT_TEST_POSTGRES_URL`` to point
at another server; the default is the local one with trust authentication.

``generate_client`` generates a Python client from an OpenAPI document with
openapi-python-client, run as a subprocess from its own virtual environment (``.venv/codegen``,
installed by ``make`` from ``codegen-requirements.txt``: its typer pin conflicts with
numident's), into the test's temporary folder; nothing is fetched.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine, text

POSTGRES_ADMIN_URL = os.environ.get(
    "NUMIDENT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_database() -> Iterator[str]:
    name = f"numident_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'numident.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL of an empty PostgreSQL database of this test's own."""
    yield from _postgres_database()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, the loop the servers use."""
    return "asyncio"


@pytest.fixture(scope="session")
def real_plan() -> Path:
    """The published 2026 numbering plan (DEF 9xx), read from ``shared/`` beside the checkout.

    ``NUMIDENT_TEST_PLAN`` points elsewhere. The file is not part of the repository.
    """
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "DEF-9xx.csv"
    path = Path(os.environ.get("NUMIDENT_TEST_PLAN", default))
    assert path.is_file(), f"the numbering plan file {path} is missing (set NUMIDENT_TEST_PLAN)"
    return path


def _codegen() -> Path:
    """``NUMIDENT_CODEGEN``, else ``codegen/bin/openapi-python-client`` in the test venv."""
    default = Path(sys.prefix) / "codegen" / "bin" / "openapi-python-client"
    path = Path(os.environ.get("NUMIDENT_CODEGEN", default))
    assert path.is_file(), (f"{path} is missing: `make` installs openapi-python-client there "
                            "(or set NUMIDENT_CODEGEN)")
    return path


@pytest.fixture
def generate_client(tmp_path: Path) -> Iterator[Callable[[Path, str], ModuleType]]:
    """Generate package ``name`` from ``document`` (no warning allowed) and import it; the
    package leaves ``sys.modules`` after the test."""
    packages: list[str] = []
    config = tmp_path / "codegen.yaml"
    config.write_text("post_hooks: []\n", encoding="utf-8")

    def generate(document: Path, name: str) -> ModuleType:
        run = subprocess.run([str(_codegen()), "generate", "--path", str(document),
                              "--output-path", str(tmp_path / name), "--meta", "none",
                              "--config", str(config)],
                             capture_output=True, text=True, timeout=120, check=False)
        output = run.stdout + run.stderr
        assert run.returncode == 0, output
        assert "Warning" not in output, output
        packages.append(name)
        return importlib.import_module(name)

    sys.path.insert(0, str(tmp_path))
    try:
        yield generate
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.split(".")[0] in packages]:
            del sys.modules[name]
