"""Fixtures shared by every test layer.

``database_url`` parametrises a test over both stores: a fresh SQLite file and a fresh
PostgreSQL database (created on the local server and dropped afterwards, under a unique name
so that concurrent runs on one server never meet). Set ``NUMIDENT_TEST_POSTGRES_URL`` to point
at another server; the default is the local one with trust authentication.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

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
