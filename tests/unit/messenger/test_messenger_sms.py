"""The SMS file sender: JSON lines for the demo and tests (HTTP providers: test_channels)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from numident.core.clock import FakeClock
from numident.messenger.sms import FileSmsSender, last_code_in_file

pytestmark = pytest.mark.anyio


async def test_file_sender_appends_json_lines_that_tests_read_codes_from(
        tmp_path: Path, clock: FakeClock) -> None:
    """Each message is one {"to","text","at"} line; the latest code per number is found."""
    path = tmp_path / "sms" / "out.jsonl"
    sender = FileSmsSender(path, clock)
    await sender.send("+79161234567", "chat: your code is 123456.")
    await sender.send("+79031234567", "chat: your code is 654321.")
    await sender.send("+79161234567", "chat: your code is 777888.")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"to": "+79161234567", "text": "chat: your code is 123456.",
                        "at": "2026-01-01T12:00:00Z"}
    assert last_code_in_file(path, "+79161234567") == "777888"
    assert last_code_in_file(path, "+79990000000") is None
