"""``numident messenger identify-all`` as a process against a real gateway, killed mid-run."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

from e2e_servers import NUMIDENT, cli, free_port, start_server, wait_for
from sqlalchemy import create_engine, func, select

from numident.demo.data import OPERATORS, write_plan
from numident.messenger.tables import accounts, bulk_identifications
from numident.operator.tables import identification_requests

ALFA_INN = OPERATORS[0].inn
ACCOUNTS = 3000
BATCH = 50


def test_a_killed_bulk_run_resumes_without_asking_again_for_answered_accounts(
        tmp_path: Path) -> None:
    """SIGKILL mid-run, then the same command again: every account ends identified, and only
    the batch in flight at the kill is asked twice."""
    gateway_port = free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    gateway_env = {"NUMIDENT_HOME": str(tmp_path / "gateway"),
                   "NUMIDENT_OPERATOR__PUBLIC_URL": gateway_url}
    messenger_env = {"NUMIDENT_HOME": str(tmp_path / "messenger")}
    (tmp_path / "gateway.jwk").write_text(cli(["operator", "public-key"], gateway_env).stdout)
    (tmp_path / "messenger.jwk").write_text(
        cli(["messenger", "public-key"], messenger_env).stdout)
    numbers = [f"+7916555{i:04d}" for i in range(ACCOUNTS)]
    export = tmp_path / "subscribers.csv"
    export.write_text("phone_number,contract_id,status,activated_at\n" + "".join(
        f"{n},C-{i},active,2024-01-01\n" for i, n in enumerate(numbers)), encoding="utf-8")
    cli(["operator", "import-subscribers", str(export)], gateway_env)
    cli(["operator", "add-organizer", "chat", "--notice-url", "http://127.0.0.1:9/notices",
         "--public-key", str(tmp_path / "messenger.jwk")], gateway_env)
    config = tmp_path / "messenger.toml"
    config.write_text(f"""
[messenger]
organizer = "chat"

[[messenger.operators]]
inn = "{ALFA_INN}"
name = "Alfa"
gateway_url = "{gateway_url}"
notice_public_key = "{tmp_path / 'gateway.jwk'}"
""", encoding="utf-8")
    cli(["messenger", "import-plan", str(write_plan(tmp_path / "plan.csv")),
         "--config", str(config)], messenger_env)
    users = tmp_path / "users.csv"
    users.write_text("account_id,phone_number,possession_proven_at\n" + "".join(
        f"user-{i:05d},{n},2026-11-30T10:00:00Z\n" for i, n in enumerate(numbers)),
        encoding="utf-8")
    gateway = start_server("operator", gateway_env, tmp_path / "gateway.log", gateway_port)
    messenger_db = create_engine(f"sqlite:///{tmp_path / 'messenger' / 'messenger.db'}")
    gateway_db = create_engine(f"sqlite:///{tmp_path / 'gateway' / 'operator.db'}")
    command = [*NUMIDENT, "messenger", "identify-all", str(users), "--config", str(config),
               "--batch-size", str(BATCH), "--concurrency", "1",
               "--unidentified", str(tmp_path / "unidentified.csv")]
    run: subprocess.Popen[bytes] | None = None
    try:
        run = subprocess.Popen(command, env={**os.environ, **messenger_env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answered() -> int:
            try:
                with messenger_db.connect() as conn:
                    return int(conn.scalar(select(func.count()).select_from(accounts)) or 0)
            except Exception:  # the first run may not have made its tables yet
                return 0

        assert wait_for(lambda: answered() >= 5 * BATCH, timeout=60), "no progress"
        run.kill()
        run.wait(timeout=10)
        with messenger_db.connect() as conn:
            before_kill = set(conn.scalars(select(accounts.c.identification_code)))
        assert 0 < len(before_kill) < ACCOUNTS, "the kill landed after the run had finished"

        again = cli(command[3:], messenger_env)
        assert "0 accounts not identified" in again.stdout

        with messenger_db.connect() as conn:
            states = dict(conn.execute(select(accounts.c.state, func.count())
                                       .group_by(accounts.c.state)).all())
            left = conn.scalar(select(func.count()).select_from(bulk_identifications)
                               .where(bulk_identifications.c.status != "identified"))
        assert states == {"identified": ACCOUNTS}
        assert left == 0
        with gateway_db.connect() as conn:
            asked = dict(conn.execute(
                select(identification_requests.c.identification_code, func.count())
                .group_by(identification_requests.c.identification_code)).all())
        assert len(asked) == ACCOUNTS
        twice = {code for code, count in asked.items() if count > 1}
        assert not twice & before_kill, "an account answered before the kill was asked again"
        assert len(twice) <= BATCH, f"{len(twice)} asked twice: more than the batch in flight"
        with (tmp_path / "unidentified.csv").open(encoding="utf-8") as handle:
            assert list(csv.reader(handle)) == [
                ["account_id", "phone_number", "operator_inn", "status", "reason"]]
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.wait(timeout=10)
        gateway.stop()
        messenger_db.dispose()
        gateway_db.dispose()
