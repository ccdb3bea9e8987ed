"""The database URL of the settings: what ``create_database_engine`` accepts and refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from numident.errors import ConfigurationError
from numident.storage.database import create_database_engine


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_database_is_refused_with_the_reason(url: str) -> None:
    with pytest.raises(ConfigurationError, match="in-memory SQLite database"):
        create_database_engine(url)


def test_a_text_that_is_no_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="is not a database URL"):
        create_database_engine("not a url")


def test_a_sqlite_file_gets_its_folder(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'new' / 'gateway.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    engine.dispose()
    assert (tmp_path / "new" / "gateway.db").exists()
