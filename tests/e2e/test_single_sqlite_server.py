"""One server process per SQLite database: a second would only queue on the same write lock."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx2
import pytest
from e2e_servers import NUMIDENT, free_port, start_server


@pytest.mark.parametrize("side", ["operator", "messenger"])
def test_a_second_server_on_one_sqlite_database_is_refused_and_the_first_serves_on(
        side: str, tmp_path: Path) -> None:
    """The second ``serve`` exits 1 naming the database and PostgreSQL; the first still
    answers, and once it is gone a new one starts."""
    env = {"NUMIDENT_HOME": str(tmp_path / "home")}
    first = start_server(side, env, tmp_path / "first.log")
    try:
        second = subprocess.run([*NUMIDENT, side, "serve", "--host", "127.0.0.1", "--port",
                                 str(free_port())], env={**os.environ, **env},
                                capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 1, second.stderr
        assert f"{side}.db" in second.stderr
        assert "PostgreSQL" in second.stderr
        assert "Traceback" not in second.stderr
        assert httpx2.get(f"{first.url}/healthz", timeout=5).status_code == 200
    finally:
        first.kill()
    again = start_server(side, env, tmp_path / "again.log")
    again.stop()
