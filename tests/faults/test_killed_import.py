"""An import killed mid-way leaves no process behind and the registry exactly as it was.

``numident operator import-subscribers`` of a 250k-row export (over 8 MB) that changes every
contract of a 20k-line registry and adds the rest is sent SIGKILL or SIGTERM while it is
reading the file. Every
process of the import must be gone, the registry, its history and the outbox unchanged, and
the same import run again must then apply whole.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import psutil
import pytest
from e2e_servers import NUMIDENT, cli, wait_for
from import_fixtures import child_env, installation, snapshot, write_delta

LINES = 20_000
NEW = 230_000
BUSY_CPU = 2.5


def mid_way(process: psutil.Process, path: Path) -> bool:
    """True once the import is at work on the rows: it has the export open, or processes of
    its own have started and spent BUSY_CPU seconds of CPU between them."""
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    used, reading = 0.0, False
    for member in family:
        try:
            times = member.cpu_times()
            used += times.user + times.system
            reading = reading or any(Path(f.path) == path for f in member.open_files())
        except psutil.NoSuchProcess:
            continue
    return reading or (len(family) > 1 and used >= BUSY_CPU)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_import_leaves_no_process_and_the_registry_whole_old(
        tmp_path: Path, database_url: str, sig: signal.Signals) -> None:
    """Killed while reading, the import's processes all end and nothing stored changed;
    run again, it applies every row."""
    with installation(tmp_path, database_url, LINES) as setup:
        delta = tmp_path / "delta.csv"
        write_delta(delta, LINES, NEW)
        assert delta.stat().st_size > 8 << 20
        before = snapshot(setup.engine)
        importer = subprocess.Popen([*NUMIDENT, "operator", "import-subscribers", str(delta)],
                                    env=child_env(setup.env()), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        watched = psutil.Process(importer.pid)
        try:
            assert wait_for(lambda: mid_way(watched, delta.resolve()), timeout=60)
            family = [watched, *watched.children(recursive=True)]
            importer.send_signal(sig)
            importer.wait(timeout=30)
            _, alive = psutil.wait_procs(family, timeout=10)
        finally:
            if importer.poll() is None:
                importer.kill()
                importer.wait()
        assert importer.returncode == -sig
        assert alive == []
        assert snapshot(setup.engine) == before
        again = cli(["operator", "import-subscribers", str(delta)], setup.env())
        assert f"{LINES + NEW} rows: {NEW} new, {LINES} changed" in again.stdout
        after = snapshot(setup.engine)
        assert after.history == before.history + LINES + NEW
        assert ("+79160000000", "C-0", "terminated") in after.rows
        assert ("+79160000001", "C-1-new", "active") in after.rows
