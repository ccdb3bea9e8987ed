"""The SMS adapters: a JSON-lines file for the demo and tests, an HTTP provider for production."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from numident.core.clock import FakeClock
from numident.errors import UpstreamUnavailable
from numident.messenger.sms import FileSmsSender, HttpSmsSender, last_code_in_file

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


async def test_http_sender_posts_with_the_bearer_token() -> None:
    """The provider gets {"to","text"} and the configured token; a 5xx is UpstreamUnavailable."""
    seen: list[httpx2.Request] = []
    statuses = iter([202, 502])

    def provider(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(next(statuses))

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(provider)) as client:
        sender = HttpSmsSender("https://sms.example/send", "provider-token", client)
        await sender.send("+79161234567", "code 123456")
        with pytest.raises(UpstreamUnavailable) as failed:
            await sender.send("+79161234567", "code 123456")
    assert json.loads(seen[0].content) == {"to": "+79161234567", "text": "code 123456"}
    assert seen[0].headers["Authorization"] == "Bearer provider-token"
    assert failed.value.code == "SMS_UNAVAILABLE"
