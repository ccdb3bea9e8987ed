"""The real ``import-ports`` command meets a routing load that holds the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from numident.routing.lock import LoadLock
from numident.routing.service import RoutingService
from numident.storage.database import create_database_engine
from numident.storage.migrate import upgrade


def test_the_cli_waits_for_a_running_load_then_refuses_naming_it(tmp_path: Path) -> None:
    """With the lock held, the command says it waits, gives up after its wait, exits 1."""
    home = tmp_path / "home"
    engine = create_database_engine(f"sqlite:///{home / 'messenger.db'}")
    try:
        upgrade(engine, "messenger")
        plan = tmp_path / "plan.csv"
        plan.write_text("АВС/ DEF;От;До;Емкость;Оператор;Регион;ИНН\n"
                        "903;0000000;9999999;10000000;Билайн;М;7713076301\n", encoding="utf-8")
        RoutingService(engine).import_plan(plan)
        lock = LoadLock(engine)
        lease = lock.acquire("ports full load of Port_All_big.csv", wait_seconds=0)
        ports = tmp_path / "Port_Increment_1.csv"
        ports.write_text("number,operator,ported_at\n+79161234567,7713076301,\n",
                         encoding="utf-8")
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "numident", "messenger", "import-ports", str(ports)],
            env={**os.environ, "NUMIDENT_HOME": str(home),
                 "NUMIDENT_MESSENGER__ROUTING__LOAD_WAIT_SECONDS": "1"},
            capture_output=True, text=True, timeout=120, check=False)
        elapsed = time.monotonic() - started
        lock.release(lease)
        untouched = RoutingService(engine).route("+79161234567")
    finally:
        engine.dispose()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "waiting for another routing load to end: ports full load of " \
        "Port_All_big.csv" in result.stderr
    assert "ROUTING_LOAD_RUNNING" in result.stderr
    assert elapsed < 60
    assert untouched.operator is None
