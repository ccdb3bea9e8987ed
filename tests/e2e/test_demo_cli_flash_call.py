"""`numident messenger identify ... --channel flash_call` against a running `numident demo`."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from e2e_servers import NUMIDENT, wait_for

from numident.demo.data import CLI_NUMBER
from numident.messenger.sms import last_code_in_file


def _read_until(process: subprocess.Popen[str], marker: str) -> str:
    """The child's output up to and including the line holding ``marker`` (the test's
    timeout bounds the wait)."""
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} in the output:\n{''.join(seen)}")


# Bounds, not targets: the demo starts four servers and walks its story first (seconds on an
# idle machine, minutes on a crowded one).
@pytest.mark.timeout(420)
def test_the_cli_identifies_by_flash_call_in_the_demo(tmp_path: Path) -> None:
    """The demo (--serve) prints the command; run as printed, the CLI places a flash call,
    takes the caller's last four digits as the code, and the operator identifies zoe."""
    env = {**os.environ, "NUMIDENT_HOME": str(tmp_path / "home"), "COLUMNS": "200",
           "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen([*NUMIDENT, "demo", "--serve"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output = _read_until(demo, "--channel flash_call --config")
        assert "every outcome is as expected" in output
        command = output.strip().splitlines()[-1].split()
        assert command[:4] == ["numident", "messenger", "identify", "zoe"]
        folder = tmp_path / "home" / "demo"
        identify = subprocess.Popen([*NUMIDENT, *command[1:]], env=env, text=True,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
        calls = folder / "flash_call.jsonl"
        assert wait_for(lambda: last_code_in_file(calls, CLI_NUMBER) is not None, 60)
        code = last_code_in_file(calls, CLI_NUMBER)
        try:
            out, _ = identify.communicate(f"{code}\n", timeout=120)
        finally:
            if identify.poll() is None:
                identify.kill()
                identify.communicate()
        assert identify.returncode == 0, out
        assert "by flash call: the code is the last 4 digits" in out
        assert "identified" in out
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()
