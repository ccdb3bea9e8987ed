"""The rules of a CIBA request: hints, purposes and scopes, lifetimes, and the poll rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from numident.core.ciba import (
    CibaRefusal,
    LoginHint,
    check_form,
    judge_poll,
    lifetime,
    notification_token,
    parse_login_hint,
    requested_scope,
)

FRAUD = "dpv:FraudPreventionAndDetection"
OFFERED = {FRAUD, "dpv:IdentityVerification"}
REGISTERED = {"sim-swap:check", "number-verification:verify"}
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def refusal(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(CibaRefusal) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value.error


@pytest.mark.parametrize(("hint", "parsed"), [
    ("tel:+79161234567", LoginHint(phone_number="+79161234567")),
    ("phone_number:+7 916 123-45-67", LoginHint(phone_number="+79161234567")),
    ("operatortoken:session-1", LoginHint(session="session-1")),
])
def test_the_three_hint_forms_name_a_line_or_a_session(hint: str, parsed: LoginHint) -> None:
    """Numbers come out in E.164; an operator token is a session key, taken as it is."""
    assert parse_login_hint(hint) == parsed


@pytest.mark.parametrize("hint", ["+79161234567", "tel:79161234567", "mailto:a@b.example",
                                  "tel:", "operatortoken:" + "x" * 129, "tel:+7916123456７"])
def test_malformed_hints_are_invalid_requests(hint: str) -> None:
    """A hint that is not one of the three forms, or no E.164 number, is invalid_request."""
    assert refusal(parse_login_hint, hint) == "invalid_request"


def test_the_scope_splits_into_one_offered_purpose_and_registered_api_scopes() -> None:
    """openid is ignored; the API scopes come back sorted and deduplicated."""
    assert requested_scope(f"openid sim-swap:check {FRAUD} number-verification:verify "
                           "sim-swap:check", OFFERED, REGISTERED) == (
        FRAUD, "number-verification:verify sim-swap:check")


@pytest.mark.parametrize("scope", [
    "sim-swap:check",                                      # no purpose
    f"{FRAUD} dpv:IdentityVerification sim-swap:check",    # two purposes
    "dpv:Marketing sim-swap:check",                        # a purpose not offered
    f"{FRAUD} kyc-match:match",                            # an API scope not registered
    FRAUD,                                                 # no API scope
    "",
])
def test_other_scopes_are_invalid_scope(scope: str) -> None:
    assert refusal(requested_scope, scope, OFFERED, REGISTERED) == "invalid_scope"


def test_requested_expiry_may_only_shorten_the_lifetime() -> None:
    assert (lifetime(None, 300), lifetime("60", 300), lifetime("86400", 300)) == (300, 60, 300)
    for bad in ("0", "-1", "1.5", "soon", "١٢", "9" * 10):
        assert refusal(lifetime, bad, 300) == "invalid_request", bad


@pytest.mark.parametrize(("form", "error"), [
    ({}, "invalid_request"),
    ({"login_hint": "tel:+79161234567", "id_token_hint": "x"}, "invalid_request"),
    ({"login_hint_token": "x"}, "invalid_request"),
    ({"login_hint": "tel:+79161234567", "scope": "s" * 2049}, "invalid_request"),
    ({"login_hint": "tel:+79161234567", "binding_message": ""}, "invalid_binding_message"),
    ({"login_hint": "tel:+79161234567", "binding_message": "x" * 21}, "invalid_binding_message"),
])
def test_forms_need_exactly_one_login_hint_and_bounded_parameters(
        form: dict[str, str], error: str) -> None:
    assert refusal(check_form, form, binding_message_length=20) == error


def test_a_long_assertion_and_a_short_binding_message_pass() -> None:
    check_form({"login_hint": "tel:+79161234567", "client_assertion": "a" * 5000,
                "binding_message": "x" * 20}, binding_message_length=20)


def test_ping_requests_carry_a_visible_ascii_notification_token() -> None:
    assert notification_token({"client_notification_token": "8d67dc78-7faa"}) == "8d67dc78-7faa"
    for form in ({}, {"client_notification_token": ""},
                 {"client_notification_token": "with space"},
                 {"client_notification_token": "t" * 1025}):
        assert refusal(notification_token, form) == "invalid_request", form


def test_polling_sooner_than_the_interval_slows_the_client_down_by_five_seconds() -> None:
    """The first poll and one after the interval are pending; a sooner one is slow_down and
    the interval grows from 5 to 10 s, then to 15 s."""
    first = judge_poll(None, 5, NOW)
    assert (first.too_soon, first.interval, first.refusal().error) == (
        False, 5, "authorization_pending")
    on_time = judge_poll(NOW, 5, NOW + timedelta(seconds=5))
    assert (on_time.too_soon, on_time.interval) == (False, 5)
    early = judge_poll(NOW, 5, NOW + timedelta(seconds=4.9))
    assert (early.too_soon, early.interval, early.refusal().error) == (True, 10, "slow_down")
    assert judge_poll(NOW, 10, NOW + timedelta(seconds=9)).interval == 15
