"""The gateway's access tokens: issue, verify, expiry, forgery, and the verification cache."""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

import pytest
from joserfc import jwt

from numident.client.assertions import ASSERTION_TYPE, make_client_assertion, token_request_form
from numident.client.keys import PrivateKey, generate_key
from numident.core.clock import FakeClock
from numident.errors import Unauthenticated
from numident.trust.tokens import AccessTokenIssuer

GATEWAY = "https://gw.alpha.example"


def issuer_with(key: PrivateKey, clock: FakeClock, **options: Any) -> AccessTokenIssuer:
    return AccessTokenIssuer(key, issuer=GATEWAY, audience=GATEWAY, clock=clock, **options)


def spy_on_signature_checks(issuer: AccessTokenIssuer,
                            monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature ``issuer`` checks from now on (cache misses)."""
    checks: list[str] = []
    original = issuer._check

    def counting(token: str) -> Any:
        checks.append(token)
        return original(token)

    monkeypatch.setattr(issuer, "_check", counting)
    return checks


def refusal(issuer: AccessTokenIssuer, token: str) -> str:
    with pytest.raises(Unauthenticated) as refused:
        issuer.verify(token)
    return refused.value.code


def test_an_issued_token_verifies_to_its_client_and_scopes(key: PrivateKey,
                                                           clock: FakeClock) -> None:
    """The token names the client, its scopes as a set, its expiry and its jti."""
    issuer = issuer_with(key, clock, lifetime=600)
    issued = issuer.issue("chat", "identification usage")
    assert (issued.token_type, issued.expires_in, issued.scope) == (
        "Bearer", 600, "identification usage")
    claims = issuer.verify(issued.access_token)
    assert claims.client_id == "chat"
    assert claims.scope == frozenset({"identification", "usage"})
    assert claims.expires_at == clock.now() + timedelta(seconds=600)
    assert claims.jti


def test_the_token_is_an_rfc9068_jwt(clock: FakeClock) -> None:
    """Header typ at+jwt and the claims iss, sub, aud, iat, exp, jti, scope, client_id."""
    key = generate_key()
    token = jwt.decode(issuer_with(key, clock).issue("chat", "identification").access_token,
                       key.jose, algorithms=[key.algorithm])
    assert token.header["typ"] == "at+jwt"
    assert token.header["kid"] == key.kid
    assert {"iss", "sub", "aud", "iat", "exp", "jti", "scope", "client_id"} <= set(token.claims)


def test_expired_token_is_refused(key: PrivateKey, clock: FakeClock) -> None:
    """A token is valid until exp, exclusive."""
    issuer = issuer_with(key, clock, lifetime=600)
    token = issuer.issue("chat", "identification").access_token
    clock.advance(599)
    issuer_with(key, clock).verify(token)
    clock.advance(1)
    assert refusal(issuer_with(key, clock), token) == "TOKEN_EXPIRED"


def test_cache_does_not_bypass_expiry(clock: FakeClock) -> None:
    """A token verified (and cached) while fresh is still refused once it expires."""
    issuer = issuer_with(generate_key(), clock, lifetime=60)
    token = issuer.issue("chat", "identification").access_token
    issuer.verify(token)
    clock.advance(60)
    assert refusal(issuer, token) == "TOKEN_EXPIRED"
    assert refusal(issuer, token) == "TOKEN_EXPIRED"


def test_a_cached_token_is_not_verified_again(clock: FakeClock,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeated requests with one token cost one signature check."""
    issuer = issuer_with(generate_key(), clock)
    token = issuer.issue("chat", "identification").access_token
    checks = spy_on_signature_checks(issuer, monkeypatch)
    first = issuer.verify(token)
    assert all(issuer.verify(token) == first for _ in range(5))
    assert checks == [token]


def test_the_cache_keeps_only_the_most_recently_used_tokens(clock: FakeClock,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """With room for two, using token a keeps it while b is evicted by c."""
    issuer = issuer_with(generate_key(), clock, cache_size=2)
    a, b, c = (issuer.issue(name, "identification").access_token for name in "abc")
    for token in (a, b, a, c):
        issuer.verify(token)
    checks = spy_on_signature_checks(issuer, monkeypatch)
    for token in (a, c, b):
        issuer.verify(token)
    assert checks == [b]


def test_token_signed_by_another_key_is_refused(key: PrivateKey, clock: FakeClock) -> None:
    """A token minted by someone else's key with the same claims is forged."""
    forged = issuer_with(generate_key(), clock).issue("chat", "identification").access_token
    assert refusal(issuer_with(key, clock), forged) == "INVALID_TOKEN"


def test_token_for_another_audience_or_issuer_is_refused(clock: FakeClock) -> None:
    """A token of another gateway (even one sharing the key) is not valid here."""
    key = generate_key()
    mine = issuer_with(key, clock)
    other_audience = AccessTokenIssuer(key, issuer=GATEWAY, audience="https://gw.beta.example",
                                       clock=clock)
    other_issuer = AccessTokenIssuer(key, issuer="https://gw.beta.example", audience=GATEWAY,
                                     clock=clock)
    for other in (other_audience, other_issuer):
        assert refusal(mine, other.issue("chat", "identification").access_token) == (
            "INVALID_TOKEN")


def test_a_client_assertion_is_not_an_access_token(clock: FakeClock) -> None:
    """A JWT signed by the gateway's key but without typ at+jwt is refused."""
    key = generate_key()
    assertion = make_client_assertion(key, GATEWAY, GATEWAY, clock)
    assert refusal(issuer_with(key, clock), assertion) == "INVALID_TOKEN"


def test_unsigned_token_is_refused(clock: FakeClock) -> None:
    """An ``alg: none`` token with valid-looking claims is refused."""
    now = int(clock.now().timestamp())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc rightly warns about "none"
        token = jwt.encode({"alg": "none", "typ": "at+jwt"},
                           {"iss": GATEWAY, "sub": "chat", "aud": GATEWAY, "exp": now + 60,
                            "jti": "x", "scope": "identification"},
                           None,  # type: ignore[arg-type]  # "none" takes no key
                           algorithms=["none"])
    assert refusal(issuer_with(generate_key(), clock), token) == "INVALID_TOKEN"


@pytest.mark.parametrize("garbage", ["", "Bearer", "a.b.c", "ünïcode"])
def test_malformed_tokens_are_refused(garbage: str, clock: FakeClock) -> None:
    """Anything that is not one of our JWTs is an invalid token."""
    assert refusal(issuer_with(generate_key(), clock), garbage) == "INVALID_TOKEN"


def test_token_request_form_follows_rfc7523(clock: FakeClock) -> None:
    """The form names the grant, the assertion type, the assertion and its client."""
    assertion = make_client_assertion(generate_key(), "chat", GATEWAY + "/oauth2/token", clock)
    assert token_request_form(assertion, "identification") == {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion, "client_id": "chat", "scope": "identification"}
    assert ASSERTION_TYPE == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert "scope" not in token_request_form(assertion)
    assert token_request_form(assertion, client_id="other")["client_id"] == "other"
