"""private_key_jwt client assertions (RFC 7523): what the gateway accepts and refuses."""

from __future__ import annotations

import json
import uuid
import warnings
from typing import Any

import pytest
from joserfc import jws, jwt
from joserfc.jwk import OctKey

from numident.client.assertions import make_client_assertion
from numident.client.keys import JWS_REGISTRY, KeyKind, PrivateKey, PublicKey, generate_key
from numident.core.clock import FakeClock
from numident.errors import Unauthenticated
from numident.trust.assertions import (
    MAX_ASSERTION_CHARS,
    verify_client_assertion,
)
from numident.trust.replay import InMemoryJtiStore
from numident.web.errors import http_status

ISSUER = "https://gw.alpha.example"
TOKEN_URL = f"{ISSUER}/oauth2/token"
CLIENT = "chat"


class Registry:
    """The gateway's view of registered organizers: client_id -> public key."""

    def __init__(self, **keys: PrivateKey) -> None:
        self.keys = {name: key.public() for name, key in keys.items()}

    def __call__(self, client_id: str) -> PublicKey | None:
        return self.keys.get(client_id)


def verify(assertion: str, key: PrivateKey, clock: FakeClock,
           store: InMemoryJtiStore | None = None, **options: Any) -> str:
    options.setdefault("token_endpoint", TOKEN_URL)
    return verify_client_assertion(
        assertion, issuer=ISSUER, lookup_key=Registry(chat=key),
        jti_store=store if store is not None else InMemoryJtiStore(clock), clock=clock, **options)


def refusal(assertion: str, key: PrivateKey, clock: FakeClock, **options: Any) -> str:
    with pytest.raises(Unauthenticated) as refused:
        verify(assertion, key, clock, **options)
    assert http_status(refused.value) == 401
    return refused.value.code


def signed(key: PrivateKey, clock: FakeClock, alg: str | None = None, **changes: Any) -> str:
    """An assertion like the organizer's, with some claims changed (None removes one)."""
    now = int(clock.now().timestamp())
    claims = {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "iat": now, "exp": now + 60,
              "jti": str(uuid.uuid4())}
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    alg = alg or key.algorithm
    return jwt.encode({"alg": alg, "kid": key.kid}, claims, key.jose, algorithms=[alg],
                      registry=JWS_REGISTRY)


def test_a_fresh_assertion_proves_the_client(key: PrivateKey, clock: FakeClock) -> None:
    """An assertion made by the organizer's key yields its client_id, for both key kinds."""
    assertion = make_client_assertion(key, CLIENT, TOKEN_URL, clock)
    assert verify(assertion, key, clock) == CLIENT


def test_the_assertion_carries_the_claims_rfc7523_requires(key: PrivateKey,
                                                          clock: FakeClock) -> None:
    """iss = sub = client_id, aud = the token endpoint, exp = iat + lifetime, a uuid jti."""
    token = jwt.decode(make_client_assertion(key, CLIENT, TOKEN_URL, clock, lifetime=45),
                       key.jose, algorithms=[key.algorithm])
    claims = token.claims
    now = int(clock.now().timestamp())
    assert (claims["iss"], claims["sub"], claims["aud"]) == (CLIENT, CLIENT, TOKEN_URL)
    assert (claims["iat"], claims["exp"]) == (now, now + 45)
    assert uuid.UUID(claims["jti"]).version == 4
    assert (token.header["alg"], token.header["kid"]) == (key.algorithm, key.kid)


def test_every_assertion_has_its_own_jti(clock: FakeClock) -> None:
    """Two assertions made at the same instant differ, so neither looks like a replay."""
    key = generate_key()
    store = InMemoryJtiStore(clock)
    for _ in range(2):
        assert verify(make_client_assertion(key, CLIENT, TOKEN_URL, clock), key, clock,
                      store) == CLIENT


def test_replayed_assertion_is_refused(key: PrivateKey, clock: FakeClock) -> None:
    """The same assertion presented twice is refused the second time."""
    store = InMemoryJtiStore(clock)
    assertion = make_client_assertion(key, CLIENT, TOKEN_URL, clock)
    verify(assertion, key, clock, store)
    clock.advance(5)
    assert refusal(assertion, key, clock, store=store) == "ASSERTION_REPLAYED"


def test_expired_assertion_is_refused_after_the_leeway(key: PrivateKey,
                                                      clock: FakeClock) -> None:
    """An assertion is accepted up to ``leeway`` seconds past exp, and refused after."""
    assertion = make_client_assertion(key, CLIENT, TOKEN_URL, clock, lifetime=60)
    clock.advance(60 + 30)
    assert verify(assertion, key, clock) == CLIENT
    clock.advance(1)
    assert refusal(assertion, key, clock) == "ASSERTION_EXPIRED"


def test_assertion_for_another_audience_is_refused(key: PrivateKey, clock: FakeClock) -> None:
    """An assertion made for another gateway's token endpoint cannot be used here."""
    assertion = make_client_assertion(key, CLIENT, "https://gw.beta.example/oauth2/token",
                                      clock)
    assert refusal(assertion, key, clock) == "INVALID_AUDIENCE"


def test_audience_may_be_a_list_naming_the_endpoint(clock: FakeClock) -> None:
    """RFC 7519 allows ``aud`` as an array; it must contain the token endpoint."""
    key = generate_key()
    assert verify(signed(key, clock, aud=["https://other.example", TOKEN_URL]), key,
                  clock) == CLIENT
    assert refusal(signed(key, clock, aud=["https://other.example"]), key,
                   clock) == "INVALID_AUDIENCE"


def test_the_issuer_as_sole_audience_is_accepted(clock: FakeClock) -> None:
    """draft-ietf-oauth-rfc7523bis: ``aud`` is the issuer identifier, and nothing else."""
    key = generate_key()
    assert verify(signed(key, clock, aud=ISSUER), key, clock) == CLIENT
    assert verify(signed(key, clock, aud=[ISSUER]), key, clock) == CLIENT
    assert refusal(signed(key, clock, aud=[ISSUER, "https://other.example"]), key,
                   clock) == "INVALID_AUDIENCE"
    assert refusal(signed(key, clock, aud="https://gw.beta.example"), key,
                   clock) == "INVALID_AUDIENCE"


def test_a_strict_verifier_accepts_only_the_issuer(clock: FakeClock) -> None:
    """Without a token endpoint to accept, the token endpoint URL is another audience."""
    key = generate_key()
    assert verify(signed(key, clock, aud=ISSUER), key, clock, token_endpoint=None) == CLIENT
    for audience in (TOKEN_URL, [TOKEN_URL], [ISSUER]):
        assert refusal(signed(key, clock, aud=audience), key, clock,
                       token_endpoint=None) == "INVALID_AUDIENCE"


def test_eddsa_is_accepted_for_an_ed25519_key(clock: FakeClock) -> None:
    """RFC 8037's ``EdDSA`` and RFC 9864's ``Ed25519`` both verify with an Ed25519 key."""
    key = generate_key()
    for alg in ("EdDSA", "Ed25519"):
        assert verify(signed(key, clock, alg=alg), key, clock) == CLIENT


def test_eddsa_is_refused_for_a_p256_key(clock: FakeClock) -> None:
    """A P-256 key signs ES256 only: an EdDSA header is refused before any verification."""
    registered = generate_key("ES256")
    assertion = signed(generate_key(), clock, alg="EdDSA")
    assert refusal(assertion, registered, clock) == "INVALID_CLIENT"


def test_oversized_assertion_is_refused_before_parsing(clock: FakeClock) -> None:
    """An assertion longer than the bound is refused, however well-formed it is."""
    key = generate_key()
    padded = signed(key, clock, padding="x" * MAX_ASSERTION_CHARS)
    assert refusal(padded, key, clock) == "INVALID_CLIENT"


def test_assertion_whose_subject_differs_from_its_issuer_is_refused(clock: FakeClock) -> None:
    """iss must equal sub: a client cannot assert on behalf of another."""
    key = generate_key()
    assert refusal(signed(key, clock, sub="someone-else"), key, clock) == "INVALID_CLIENT"


def test_assertion_from_an_unknown_client_is_refused(clock: FakeClock) -> None:
    """A client_id with no registered key is refused."""
    key = generate_key()
    assertion = make_client_assertion(key, "stranger", TOKEN_URL, clock)
    assert refusal(assertion, key, clock) == "INVALID_CLIENT"


def test_assertion_forged_with_another_key_is_refused(key: PrivateKey, clock: FakeClock) -> None:
    """An assertion naming the client but signed by another key of the same kind fails."""
    kind: KeyKind = "Ed25519" if key.algorithm == "Ed25519" else "ES256"
    forger = generate_key(kind, kid=key.kid)
    assertion = make_client_assertion(forger, CLIENT, TOKEN_URL, clock)
    assert refusal(assertion, key, clock) == "INVALID_CLIENT"


def test_assertion_with_an_algorithm_other_than_the_keys_is_refused(clock: FakeClock) -> None:
    """An ES256-signed assertion is refused for a client registered with an Ed25519 key."""
    registered = generate_key()
    assertion = make_client_assertion(generate_key("ES256"), CLIENT, TOKEN_URL, clock)
    assert refusal(assertion, registered, clock) == "INVALID_CLIENT"


def test_unsigned_alg_none_assertion_is_refused(clock: FakeClock) -> None:
    """An ``alg: none`` JWT crafted with joserfc never reaches signature verification."""
    now = int(clock.now().timestamp())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc rightly warns about "none"
        assertion = jwt.encode({"alg": "none"}, {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL,
                                                 "exp": now + 60, "jti": "x"},
                               None,  # type: ignore[arg-type]  # "none" takes no key
                               algorithms=["none"])
    assert refusal(assertion, generate_key(), clock) == "INVALID_CLIENT"


def test_hs256_assertion_keyed_with_the_public_key_is_refused(clock: FakeClock) -> None:
    """The classic confusion attack (HMAC keyed with the public key) is refused."""
    key = generate_key()
    secret = OctKey.import_key(key.public_jwk()["x"].encode())
    now = int(clock.now().timestamp())
    assertion = jwt.encode({"alg": "HS256"}, {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL,
                                              "exp": now + 60, "jti": "x"},
                           secret, algorithms=["HS256"])
    assert refusal(assertion, key, clock) == "INVALID_CLIENT"


def test_assertions_living_up_to_an_hour_are_accepted(clock: FakeClock) -> None:
    """authlib's default assertion lives 3600 s: accepted, and its jti kept until its exp."""
    key = generate_key()
    store = InMemoryJtiStore(clock)
    assertion = make_client_assertion(key, CLIENT, TOKEN_URL, clock, lifetime=3600)
    assert verify(assertion, key, clock, store) == CLIENT
    clock.advance(3500)
    assert refusal(assertion, key, clock, store=store) == "ASSERTION_REPLAYED"


def test_assertion_living_longer_than_allowed_is_refused(clock: FakeClock) -> None:
    """exp - iat beyond ``max_lifetime`` (an hour) is refused, even when iat is pre-dated."""
    key = generate_key()
    assertion = make_client_assertion(key, CLIENT, TOKEN_URL, clock, lifetime=3601)
    assert refusal(assertion, key, clock) == "INVALID_CLIENT"
    now = int(clock.now().timestamp())
    predated = signed(key, clock, iat=now - 3500, exp=now + 200)
    assert refusal(predated, key, clock) == "INVALID_CLIENT"
    without_iat = signed(key, clock, iat=None, exp=now + 3700)
    assert refusal(without_iat, key, clock) == "INVALID_CLIENT"


@pytest.mark.parametrize("changes", [{"jti": None}, {"jti": ""}, {"jti": 7}, {"exp": None},
                                     {"exp": "soon"}, {"exp": True}, {"iat": "now"}])
def test_assertion_without_usable_exp_or_jti_is_refused(clock: FakeClock,
                                                        changes: dict[str, Any]) -> None:
    """exp must be a number and jti a non-empty string."""
    key = generate_key()
    assert refusal(signed(key, clock, **changes), key, clock) == "INVALID_CLIENT"


def test_signed_nan_exp_is_refused(clock: FakeClock) -> None:
    """Python's JSON reads NaN; such an exp must not slip past the time checks."""
    key = generate_key()
    now = int(clock.now().timestamp())
    payload = json.dumps({"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "iat": now,
                          "exp": float("nan"), "jti": "x"}).encode()
    assertion = jws.serialize_compact({"alg": key.algorithm}, payload, key.jose,
                                      algorithms=[key.algorithm])
    assert refusal(assertion, key, clock) == "INVALID_CLIENT"


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "é.é.é",
                                     "eyJhbGciOiJFZDI1NTE5In0.WzFd.AAAA"])
def test_malformed_assertions_are_refused(garbage: str, clock: FakeClock) -> None:
    """Anything that is not a signed JWT object is an invalid client."""
    assert refusal(garbage, generate_key(), clock) == "INVALID_CLIENT"
