"""The channel providers: HTTP requests shaped by the settings, the file and memory adapters."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from urllib.parse import parse_qs

import httpx2
import pytest

from numident.config import FlashCallSettings, ProviderSettings, load_settings
from numident.core.clock import FakeClock
from numident.errors import ConfigurationError, UpstreamUnavailable
from numident.messenger.channels import (
    Channel,
    CodeMessage,
    FileCallProvider,
    HttpProvider,
    Receipt,
    SmsProvider,
    providers_from_settings,
)
from numident.messenger.sms import FileSmsSender, last_code_in_file

pytestmark = pytest.mark.anyio
TO = "+79161234567"


def recording(*answers: httpx2.Response) -> tuple[list[httpx2.Request], httpx2.AsyncClient]:
    seen: list[httpx2.Request] = []
    replies = iter(answers)

    def provider(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return next(replies)

    return seen, httpx2.AsyncClient(transport=httpx2.MockTransport(provider))


async def test_sms_by_http_posts_to_and_text_with_the_bearer_token() -> None:
    """The default SMS request is JSON {"to","text"} with Authorization: Bearer."""
    seen, client = recording(httpx2.Response(202), httpx2.Response(502))
    settings = ProviderSettings(kind="http", url="https://sms.example/send", token="tok")
    async with client:
        provider = HttpProvider(Channel.SMS, settings, client)
        assert await provider.send(CodeMessage(TO, "123456", "code 123456")) == Receipt()
        with pytest.raises(UpstreamUnavailable) as failed:
            await provider.send(CodeMessage(TO, "123456", "code 123456"))
    assert json.loads(seen[0].content) == {"to": TO, "text": "code 123456"}
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert failed.value.code == "SMS_UNAVAILABLE"
    assert "HTTP 502" in failed.value.message


async def test_voice_call_request_shape_credentials_and_form_encoding_are_configurable() -> None:
    """A provider that wants a form with its own field names and basic authentication."""
    seen, client = recording(httpx2.Response(200, json={"id": "c-1"}))
    settings = ProviderSettings(
        kind="http", url="https://voice.example/call", username="acct", password="pw",
        encoding="form", body={"phone": "{to_digits}", "pin": "{code}", "lang": "ru"})
    async with client:
        await HttpProvider(Channel.VOICE_CALL, settings, client).send(
            CodeMessage(TO, "4821", "Your code is 4 8 2 1"))
    assert parse_qs(seen[0].content.decode()) == {
        "phone": ["79161234567"], "pin": ["4821"], "lang": ["ru"]}
    expected = base64.b64encode(b"acct:pw").decode()
    assert seen[0].headers["Authorization"] == f"Basic {expected}"


async def test_flash_call_reports_the_calling_number_from_the_configured_field() -> None:
    """The provider chooses the caller; its number is read at caller_field (dotted)."""
    seen, client = recording(httpx2.Response(200, json={"call": {"cli": "+74951234321"}}))
    settings = FlashCallSettings(kind="http", url="https://flash.example/", token="key",
                                 token_header="X-Api-Key", caller_field="call.cli")
    async with client:
        receipt = await HttpProvider(Channel.FLASH_CALL, settings, client).send(
            CodeMessage(TO, None, ""))
    assert receipt == Receipt("+74951234321")
    assert json.loads(seen[0].content) == {"to": TO}
    assert seen[0].headers["X-Api-Key"] == "key"
    assert "Authorization" not in seen[0].headers


@pytest.mark.parametrize("answer", [
    httpx2.Response(200, json={"status": "queued"}), httpx2.Response(200, text="ok"),
    httpx2.Response(200, json={"from": "12"})])
async def test_flash_call_without_a_usable_calling_number_is_a_provider_failure(
        answer: httpx2.Response) -> None:
    """No caller, no code: the send fails and the next channel is tried."""
    _, client = recording(answer)
    settings = FlashCallSettings(kind="http", url="https://flash.example/")
    async with client:
        with pytest.raises(UpstreamUnavailable) as failed:
            await HttpProvider(Channel.FLASH_CALL, settings, client).send(
                CodeMessage(TO, None, ""))
    assert failed.value.code == "FLASH_CALL_UNAVAILABLE"


async def test_a_provider_timeout_is_a_provider_failure() -> None:
    """A transport timeout becomes UpstreamUnavailable naming the channel."""
    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    settings = ProviderSettings(kind="http", url="https://voice.example/")
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(slow)) as client:
        with pytest.raises(UpstreamUnavailable) as failed:
            await HttpProvider(Channel.VOICE_CALL, settings, client).send(
                CodeMessage(TO, "1234", "1 2 3 4"))
    assert failed.value.code == "VOICE_CALL_UNAVAILABLE"
    assert "ReadTimeout" in failed.value.message


async def test_file_call_provider_writes_calls_that_the_code_is_read_from(
        tmp_path: Path, clock: FakeClock) -> None:
    """A flash call's line names the caller; the code is its last digits."""
    path = tmp_path / "calls.jsonl"
    flash = FileCallProvider(Channel.FLASH_CALL, path, clock)
    receipt = await flash.send(CodeMessage(TO, None, ""))
    line = json.loads(path.read_text())
    assert line == {"to": TO, "from": receipt.caller, "at": "2026-01-01T12:00:00Z"}
    assert receipt.caller is not None
    assert len(receipt.caller) == 12
    assert last_code_in_file(path, TO, flash_digits=4) == receipt.caller[-4:]


def test_unknown_placeholders_in_a_request_shape_are_refused_naming_the_field() -> None:
    """A typo in a template is a configuration error, not a request with '{tel}' in it."""
    with pytest.raises(ValueError, match="'phone' uses unknown placeholder"):
        ProviderSettings(kind="http", url="https://x.example/", body={"phone": "{tel}"})


def test_the_settings_choose_each_channels_provider(tmp_path: Path) -> None:
    """File providers under the home by default, HTTP where configured; only the channels of
    the order get one."""
    settings = load_settings(None, home=str(tmp_path), messenger={
        "channels": {"order": ["flash_call", "sms"]},
        "flash_call": {"kind": "http", "url": "https://flash.example/"}})
    providers, clients = providers_from_settings(settings)
    assert set(providers) == {Channel.FLASH_CALL, Channel.SMS}
    flash, sms = providers[Channel.FLASH_CALL], providers[Channel.SMS]
    assert isinstance(flash, HttpProvider)
    assert flash.url == "https://flash.example/"
    assert isinstance(sms, SmsProvider)
    assert isinstance(sms.sender, FileSmsSender)
    assert sms.sender.path == tmp_path / "messenger" / "sms.jsonl"
    assert len(clients) == 1


@pytest.mark.parametrize(("messenger", "named"), [
    ({"channels": {"order": ["sms"], "default": "flash_call"}}, "messenger.channels"),
    ({"channels": {"order": ["sms", "sms"]}}, "messenger.channels"),
    ({"voice_call": {"kind": "http"}}, "messenger.voice_call"),
    ({"possession": {"budgets": {"per_range": {"sends": -1}}}},
     "messenger.possession.budgets.per_range.sends")])
def test_inconsistent_channel_and_budget_settings_are_refused_naming_the_key(
        messenger: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(named)):
        load_settings(None, messenger=messenger)


def test_a_budget_or_the_circuit_is_switched_off_with_false_as_toml_has_no_null(
        tmp_path: Path) -> None:
    config = tmp_path / "messenger.toml"
    config.write_text("[messenger.possession]\ncircuit = false\n"
                      "[messenger.possession.budgets]\nper_address = false\n"
                      "total = { sends = 100 }\n", encoding="utf-8")
    possession = load_settings(config).messenger.possession
    assert possession.circuit is None
    assert possession.budgets.per_address is None
    assert possession.budgets.total is not None
    assert (possession.budgets.total.sends, possession.budgets.total.window_seconds) == (100,
                                                                                         3600)
