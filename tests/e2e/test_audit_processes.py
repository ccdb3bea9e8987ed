"""The audit trail with real processes: a gateway chains and signs in the background, the
commands verify and export it, and generic tools (sha256sum, jq, PyJWT with the gateway's
JWKS) check the export as a regulator would."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import jwt as pyjwt
import pytest
from e2e_servers import cli, register_gateway, start_server, wait_for
from sqlalchemy import create_engine, func, select, text

from numident.audit.log import audit_log
from numident.client.assertions import make_client_assertion, token_request_form
from numident.core.clock import SystemClock

NUMBERS = [f"+7916444{n:04d}" for n in range(4)]
LINKS = """
while IFS= read -r line; do printf %s "$line" | sha256sum | cut -c1-64; done < entries.jsonl \
  | head -n -1 > hashes
jq -r .prev entries.jsonl | tail -n +2 > prevs
cmp hashes prevs
"""
"""The README's check that each line's SHA-256 is the next line's prev."""


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"NUMIDENT_HOME": str(tmp_path / "home"), "NUMIDENT_DATABASE_URL": database_url,
            "NUMIDENT_OPERATOR__AUDIT__SEAL_SECONDS": "0.2",
            "NUMIDENT_OPERATOR__AUDIT__CHECKPOINT_SECONDS": "1", "COLUMNS": "300"}


def _identify(tmp_path: Path, env: dict[str, str]) -> tuple[int, dict[str, object]]:
    """A gateway process answers four identifications; its sealer chains their entries and
    signs the head. Returns how many entries there are and the JWKS it served."""
    key = register_gateway(tmp_path, env, NUMBERS, "http://127.0.0.1:9/notices")
    server = start_server("operator", env, tmp_path / "gateway.log", wait_seconds=90)
    engine = create_engine(env["NUMIDENT_DATABASE_URL"])
    chain = audit_log("operator")
    try:
        assertion = make_client_assertion(key, "chat", server.url, SystemClock())
        granted = httpx2.post(f"{server.url}/oauth2/token", data=token_request_form(assertion))
        headers = {"Authorization": f"Bearer {granted.json()['access_token']}"}
        for n, number in enumerate(NUMBERS):
            answer = httpx2.post(f"{server.url}/identification/v1/requests", headers=headers,
                                 json={"phoneNumber": number, "identificationCode": f"u-{n}"})
            assert answer.status_code == 200, answer.text
        with engine.connect() as conn:
            written = conn.scalar(select(func.count()).select_from(chain.table))
        assert written is not None
        assert written >= 8

        def signed_to_the_end() -> bool:
            with engine.connect() as conn:
                return conn.scalar(select(func.max(chain.checkpoints.c.seq))) == written

        assert wait_for(signed_to_the_end, timeout=20), "the server did not seal and sign"
        jwks = httpx2.get(f"{server.url}/.well-known/jwks.json").json()
    finally:
        server.stop()
        engine.dispose()
    return written, jwks


@pytest.mark.timeout(600)  # nine processes: seconds each on an idle machine
def test_a_served_chain_verifies_exports_and_passes_generic_tools(tmp_path: Path,
                                                                 env: dict[str, str]) -> None:
    """Served, verified, exported, checked offline and with generic tools; then a forged
    export and a row rewritten behind the triggers are both refused, naming the entry."""
    written, jwks = _identify(tmp_path, env)
    verified = cli(["operator", "audit", "verify"], env)
    assert f"audit chain intact: entries 1..{written} verified" in verified.stdout
    assert f"the last good checkpoint signs entry {written}" in verified.stdout
    today = datetime.now(UTC).date().isoformat()
    bundle = tmp_path / "audit.zip"
    exported = cli(["operator", "audit", "export", "--from", today, "--to", today,
                    "--out", str(bundle)], env)
    assert f"entries 1..{written} ({written})" in exported.stdout
    jwk = tmp_path / "operator.jwk"
    jwk.write_text(json.dumps(jwks["keys"][0]), encoding="utf-8")
    checked = cli(["audit", "verify-export", str(bundle), "--public-key", str(jwk)], {})
    assert f"export verified: operator entries 1..{written} ({written})" in checked.stdout

    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder)
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True,
                          text=True, timeout=30, check=False)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    assert sums.stdout.count(": OK") == 4
    links = subprocess.run(["bash", "-c", LINKS], cwd=folder, capture_output=True, text=True,
                           timeout=30, check=False)
    assert links.returncode == 0, links.stdout + links.stderr
    statement = pyjwt.decode((folder / "statement.jwt").read_text().strip(),
                             pyjwt.PyJWK(jwks["keys"][0]), algorithms=["EdDSA", "ES256"])
    last = (folder / "entries.jsonl").read_bytes().splitlines()[-1]
    assert statement["hash"] == hashlib.sha256(last).hexdigest()
    assert statement["export"]["count"] == written

    (folder / "entries.jsonl").write_bytes(
        (folder / "entries.jsonl").read_bytes().replace(b'"confirmed"', b'"not_found"', 1))
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as archive:
        for member in folder.iterdir():
            archive.write(member, member.name)
    refused = cli(["audit", "verify-export", str(forged), "--public-key", str(jwk)], {},
                  check=False)
    assert refused.returncode == 1
    assert "export does not verify" in refused.stderr
    assert "was changed" in refused.stderr

    # Someone with the database drops the append-only triggers and rewrites an answer.
    engine = create_engine(env["NUMIDENT_DATABASE_URL"])
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_append_only ON audit"))
            conn.execute(text("DROP TRIGGER audit_sealed_once ON audit"))
        else:
            conn.execute(text("DROP TRIGGER audit_no_update"))
            conn.execute(text("DROP TRIGGER audit_sealed_once"))
        answered = conn.scalar(text("SELECT min(seq) FROM audit WHERE action = 'answered'"))
        conn.execute(text("UPDATE audit SET detail = NULL WHERE seq = :seq"), {"seq": answered})
    engine.dispose()
    broken = cli(["operator", "audit", "verify"], env, check=False)
    assert broken.returncode == 1
    assert f"audit chain broken at entry {answered}:" in broken.stderr
    assert f"entries 1..{answered - 1} verified before it" in broken.stderr


@pytest.mark.parametrize(("start", "end", "words"), [
    ("2026-11-03", "2026-11-02", "the period is reversed"),
    ("2026-11-01", (datetime.now(UTC) + timedelta(days=2)).date().isoformat(),
     "the period ends in the future"),
    ("2026-13-01", "2026-11-02", "Invalid value for '--from'"),
])
def test_a_bad_period_is_bad_usage(tmp_path: Path, env: dict[str, str], start: str, end: str,
                                   words: str) -> None:
    result = cli(["operator", "audit", "export", "--from", start, "--to", end,
                  "--out", str(tmp_path / "x.zip")], env, check=False)
    assert result.returncode == 2
    assert words in result.stderr
    assert not (tmp_path / "x.zip").exists()
