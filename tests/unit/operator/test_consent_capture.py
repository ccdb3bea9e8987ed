"""Consent capture: each purpose's legal basis decides, and the file sender's messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from numident.config import load_settings
from numident.errors import ConfigurationError
from numident.operator.consent import (
    FileConsentSender,
    Invitation,
    LegalBasis,
    PurposeConsent,
    last_url_in_file,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def invitation(number: str, url: str, binding: str | None = "A-7") -> Invitation:
    return Invitation(number, "bank", "dpv:IdentityVerification", "sim-swap:check", binding,
                      url, NOW)


def test_only_legitimate_interest_approves_at_once(tmp_path: Path) -> None:
    """Consent purposes and purposes with no basis wait for the subscriber."""
    capture = PurposeConsent({"dpv:FraudPreventionAndDetection": "legitimate_interest",
                              "dpv:IdentityVerification": "consent"},
                             FileConsentSender(tmp_path / "out.jsonl"))
    assert capture.bases["dpv:IdentityVerification"] is LegalBasis.CONSENT
    assert capture.approves_at_once("dpv:FraudPreventionAndDetection")
    assert not capture.approves_at_once("dpv:IdentityVerification")
    assert not capture.approves_at_once("dpv:Marketing")
    assert capture.amr == "sms"


def test_an_unknown_legal_basis_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="contract"):
        PurposeConsent({"dpv:X": "contract"}, FileConsentSender(tmp_path / "out.jsonl"))


def test_the_file_sender_appends_one_message_per_invitation(tmp_path: Path) -> None:
    """Each line names the line, the text the subscriber reads, the URL and the time; the
    latest URL per number is what the subscriber would open."""
    path = tmp_path / "nested" / "out.jsonl"
    capture = PurposeConsent({}, FileConsentSender(path))
    capture.ask(invitation("+79161234567", "http://gw/1"), NOW)
    capture.ask(invitation("+79031112233", "http://gw/2", binding=None), NOW)
    capture.ask(invitation("+79161234567", "http://gw/3"), NOW)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(m["to"], m["url"]) for m in lines] == [
        ("+79161234567", "http://gw/1"), ("+79031112233", "http://gw/2"),
        ("+79161234567", "http://gw/3")]
    assert lines[0]["text"] == ("bank asks to use your line for dpv:IdentityVerification "
                                "(A-7). Approve or deny: http://gw/1")
    assert "()" not in lines[1]["text"]
    assert lines[0]["at"] == NOW.isoformat()
    assert last_url_in_file(path, "+79161234567") == "http://gw/3"
    assert last_url_in_file(path, "+79990000000") is None
    assert last_url_in_file(tmp_path / "absent.jsonl", "+79161234567") is None


@pytest.mark.parametrize(("ciba", "named"), [
    ({"purposes": {"Marketing": "consent"}}, "operator.ciba.purposes"),
    ({"purposes": {"dpv:Marketing": "contract"}}, "operator.ciba.purposes"),
    ({"interval_seconds": 0}, "operator.ciba.interval_seconds"),
    ({"request_seconds": 5}, "operator.ciba.request_seconds"),
    ({"sender": {"kind": "pigeon"}}, "operator.ciba.sender.kind"),
])
def test_bad_ciba_settings_stop_the_program_naming_the_key(
        ciba: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named.replace(".", r"\.")):
        load_settings(None, operator={"ciba": ciba})


def test_fraud_prevention_is_legitimate_interest_by_default() -> None:
    settings = load_settings(None).operator.ciba
    assert settings.purposes == {"dpv:FraudPreventionAndDetection": "legitimate_interest"}
    assert (settings.request_seconds, settings.interval_seconds) == (300, 5)
