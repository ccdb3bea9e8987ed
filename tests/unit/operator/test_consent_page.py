"""The consent page's HTML: what it says, what it escapes, and the CSP that admits its style."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from numident.operator.ciba import ConsentView
from numident.operator.consent_page import purpose_name, question

EXPIRES = datetime(2026, 12, 1, 9, 5, tzinfo=UTC)


@pytest.mark.parametrize(("purpose", "name"), [
    ("dpv:FraudPreventionAndDetection", "Fraud prevention and detection"),
    ("dpv:IdentityVerification", "Identity verification"),
    ("dpv:RequestedServiceProvision", "Requested service provision"),
    ("dpv:SellProductsToDataSubject", "Sell products to data subject"),
    ("dpv:KYC", "KYC"),
])
def test_a_purpose_is_shown_in_words(purpose: str, name: str) -> None:
    """DPV's CamelCase names become a sentence; an acronym stays in capitals."""
    assert purpose_name(purpose) == name


def test_the_question_escapes_what_the_organizer_sent() -> None:
    """Client id and binding message come from the organizer: markup in them is text."""
    view = ConsentView('bank"><b>', "dpv:IdentityVerification", "sim-swap:check",
                       "<script>x</script>", EXPIRES)
    body = question(view).body.decode()
    assert "<script>" not in body
    assert "&lt;script&gt;x&lt;/script&gt;" in body
    assert 'bank&quot;&gt;&lt;b&gt;' in body
    assert "<b>" not in body


def test_the_deadline_is_shown_in_utc_and_the_code_only_when_given() -> None:
    """The deadline is converted to UTC; without a binding message no code row appears."""
    moscow = timezone(timedelta(hours=3))
    view = ConsentView("bank", "dpv:IdentityVerification", "sim-swap:check", None,
                       EXPIRES.astimezone(moscow))
    body = question(view).body.decode()
    assert "<dd>01 Dec 2026, 09:05 UTC</dd>" in body
    assert "Code shown" not in body
    assert re.findall(r'<button type="submit" name="decision" value="(\w+)"', body) == [
        "approve", "deny"]


def test_the_csp_admits_exactly_the_inline_style_of_the_page() -> None:
    """The style-src hash is that of the one <style> element; nothing else is allowed."""
    response = question(ConsentView("bank", "dpv:KYC", "kyc-match:match", "A-7", EXPIRES))
    styles = re.findall(r"<style>(.*?)</style>", response.body.decode(), flags=re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    policy = response.headers["content-security-policy"]
    assert f"style-src 'sha256-{digest}'" in policy
    assert policy.startswith("default-src 'none';")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
