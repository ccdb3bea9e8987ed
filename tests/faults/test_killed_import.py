"""An import killed mid-way leaves no process behind and the registry whole: old, or new.

``numident operator import-subscribers`` of a 250k-row export (over 8 MB) that changes every
contract of a 20k-line registry and adds the rest is sent SIGKILL or SIGTERM while it is
reading the file. Every process of the import must be gone, the registry, its history and
the outbox unchanged, and the same import run again must then apply whole. Killed once its
switch has begun, an import is completed by whoever runs next (the same import again, or the
gateway), with exactly one notice per ended usage.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import psutil
import pytest
from e2e_servers import NUMIDENT, cli, start_server, wait_for
from import_fixtures import child_env, installation, number, snapshot, write_delta
from sqlalchemy import Engine, select

from numident.core.clock import SystemClock
from numident.operator.tables import organizers, outbox, subscriber_imports, usages

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


SWITCHED_LINES = 60_000
USAGE_EVERY = 10


def seed_usages(engine: Engine, lines: int) -> list[tuple[str, str]]:
    """An active usage of the organizer for every USAGE_EVERY-th number; their (number, code)."""
    now = SystemClock().now()
    seeded = [(number(n), f"u-{n}") for n in range(0, lines, USAGE_EVERY)]
    with engine.begin() as conn:
        organizer = conn.execute(select(organizers.c.id)).scalar_one()
        conn.execute(usages.insert(), [
            {"organizer_id": organizer, "identification_code": code, "phone_number": phone,
             "status": "active", "since": now, "last_confirmed_at": now}
            for phone, code in seeded])
    return seeded


def journal(engine: Engine) -> tuple[str, int, int] | None:
    """The newest import journal's state, rows applied and rows in all."""
    with engine.connect() as conn:
        row = conn.execute(select(subscriber_imports.c.state, subscriber_imports.c.applied,
                                  subscriber_imports.c.row_count)
                           .order_by(subscriber_imports.c.id.desc()).limit(1)).first()
    return None if row is None else (row.state, row.applied, row.row_count)


def announced(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted((d["phoneNumber"], d["identificationCode"]) for d in (
            json.loads(p)["data"] for p in conn.execute(select(outbox.c.payload)).scalars()))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("completer", ["next-import", "gateway"])
def test_an_import_killed_mid_switch_ends_fully_applied_with_one_notice_per_usage(
        tmp_path: Path, database_url: str, completer: str) -> None:
    """SIGKILLed once its switch has applied some chunks but not all, the import is completed
    by the next run of the same file, or by a gateway started afterwards: every contract has
    changed and every usage has ended with exactly one notice."""
    with installation(tmp_path, database_url, SWITCHED_LINES) as setup:
        seeded = seed_usages(setup.engine, SWITCHED_LINES)
        delta = tmp_path / "delta.csv"
        write_delta(delta, SWITCHED_LINES)
        importer = subprocess.Popen([*NUMIDENT, "operator", "import-subscribers", str(delta)],
                                    env=child_env(setup.env()), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        try:
            assert wait_for(lambda: (j := journal(setup.engine)) is not None
                            and j[0] == "switching" and j[1] > 0, timeout=180)
            importer.kill()
            importer.wait(timeout=30)
        finally:
            if importer.poll() is None:
                importer.kill()
                importer.wait()
        state, applied, total = journal(setup.engine) or ("", 0, 0)
        assert state == "switching"
        assert 0 < applied < total == SWITCHED_LINES
        assert 0 < len(announced(setup.engine)) < len(seeded)
        if completer == "next-import":
            again = cli(["operator", "import-subscribers", str(delta)], setup.env())
            assert (f"completed an interrupted import of {SWITCHED_LINES} rows: 0 new, "
                    f"{SWITCHED_LINES} changed") in again.stdout
            assert f"{SWITCHED_LINES} rows: 0 new, 0 changed" in again.stdout
        else:
            server = start_server("operator", setup.env(), tmp_path / "gateway.log")
            try:
                assert wait_for(lambda: (journal(setup.engine) or ("",))[0] == "done",
                                timeout=120)
            finally:
                server.stop()
        after = snapshot(setup.engine)
        assert len(after.rows) == SWITCHED_LINES
        assert ("+79160000000", "C-0", "terminated") in after.rows
        assert ("+79160000001", "C-1-new", "active") in after.rows
        assert {(phone, status) for phone, _, status in after.rows} == {
            (number(n), "terminated" if n % 2 == 0 else "active")
            for n in range(SWITCHED_LINES)}
        assert after.history == 2 * SWITCHED_LINES
        assert announced(setup.engine) == sorted(seeded)
        assert after.invalidated == len(seeded)
