"""Signed notices (RFC 9421 over an RFC 9530 Content-Digest): what a receiver accepts."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from numident.client.keys import PrivateKey, PublicKey, generate_key
from numident.client.signatures import MAX_SKEW, TAG, NoticeSigner, NoticeVerifier
from numident.core.clock import FakeClock
from numident.errors import Unauthenticated
from numident.web.errors import http_status

URL = "https://messenger.example/messenger/v1/notices"
BODY = b'{"id":"evt-1","type":"contract_terminated","data":{"code":"u-42"}}'
HEADERS = {"Content-Type": "application/cloudevents+json", "Idempotency-Key": "evt-1"}


def signed_headers(key: PrivateKey, clock: FakeClock, *, body: bytes = BODY,
                   keyid: str | None = None) -> dict[str, str]:
    """The headers an operator sends: its own plus those the signer adds."""
    return {**HEADERS, **NoticeSigner(key, keyid, now=clock.now).sign("POST", URL, body,
                                                                       dict(HEADERS))}


def verifier_for(key: PrivateKey, clock: FakeClock, max_age: int = 300) -> NoticeVerifier:
    registered: dict[str, PublicKey] = {key.kid: key.public()}
    return NoticeVerifier(registered.get, clock, max_age=max_age)


def refusal(verifier: NoticeVerifier, headers: dict[str, str], *, method: str = "POST",
            url: str = URL, body: bytes = BODY) -> str:
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify(method, url, headers, body)
    assert http_status(refused.value) == 401
    return refused.value.code


def test_a_signed_notice_verifies_to_its_keyid(key: PrivateKey, clock: FakeClock) -> None:
    """Signed by the registered key, unchanged, fresh: accepted for both key kinds."""
    headers = signed_headers(key, clock)
    assert verifier_for(key, clock).verify("POST", URL, headers, BODY) == key.kid


def test_the_signature_covers_method_authority_path_type_and_digest(key: PrivateKey,
                                                                   clock: FakeClock) -> None:
    """Signature-Input lists the covered components, created, keyid, alg and the tag."""
    added = NoticeSigner(key, now=clock.now).sign("POST", URL, BODY, dict(HEADERS))
    assert set(added) == {"Content-Digest", "Signature-Input", "Signature"}
    digest = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert added["Content-Digest"] == f"sha-256=:{digest}:"
    created = int(clock.now().timestamp())
    algorithm = "ed25519" if key.algorithm == "Ed25519" else "ecdsa-p256-sha256"
    assert added["Signature-Input"] == (
        'notice=("@method" "@authority" "@path" "content-type" "content-digest")'
        f';created={created};keyid="{key.kid}";alg="{algorithm}";tag="{TAG}"')
    assert added["Signature"].startswith("notice=:")


def test_signing_leaves_the_callers_headers_alone(clock: FakeClock) -> None:
    """``sign`` returns headers to add; the dict passed in is not modified."""
    headers = dict(HEADERS)
    NoticeSigner(generate_key(), now=clock.now).sign("POST", URL, BODY, headers)
    assert headers == HEADERS


def test_a_chosen_keyid_is_signed_and_looked_up(clock: FakeClock) -> None:
    """The signer may present another keyid than the thumbprint; the receiver uses it."""
    key = generate_key()
    headers = signed_headers(key, clock, keyid="alpha-2026")
    verifier = NoticeVerifier({"alpha-2026": key.public()}.get, clock)
    assert verifier.verify("POST", URL, headers, BODY) == "alpha-2026"


def test_a_notice_without_content_type_cannot_be_signed(clock: FakeClock) -> None:
    """The content type is covered, so it must be there to sign."""
    with pytest.raises(ValueError, match="Content-Type"):
        NoticeSigner(generate_key(), now=clock.now).sign("POST", URL, BODY, {})


def test_receivers_see_lowercase_header_names_and_http_behind_a_proxy(clock: FakeClock) -> None:
    """Header names are case-insensitive, and the scheme is not covered (TLS ends at a proxy)."""
    key = generate_key()
    headers = {name.lower(): value for name, value in signed_headers(key, clock).items()}
    internal_url = URL.replace("https://", "http://")
    assert verifier_for(key, clock).verify("POST", internal_url, headers, BODY) == key.kid


def test_tampered_body_is_a_digest_mismatch(key: PrivateKey, clock: FakeClock) -> None:
    """Any change to the body after signing is caught by the signed digest."""
    headers = signed_headers(key, clock)
    tampered = BODY.replace(b"u-42", b"u-43")
    assert refusal(verifier_for(key, clock), headers, body=tampered) == "DIGEST_MISMATCH"


def test_a_recomputed_digest_breaks_the_signature(clock: FakeClock) -> None:
    """Replacing body and Content-Digest together fails: the digest header is signed."""
    key = generate_key()
    tampered = BODY.replace(b"u-42", b"u-43")
    headers = signed_headers(key, clock)
    headers["Content-Digest"] = signed_headers(key, clock, body=tampered)["Content-Digest"]
    assert refusal(verifier_for(key, clock), headers, body=tampered) == "SIGNATURE_INVALID"


@pytest.mark.parametrize(("method", "url", "header_change"), [
    ("POST", URL, {"Content-Type": "text/plain"}),
    ("PUT", URL, {}),
    ("POST", "https://messenger.example/messenger/v1/other", {}),
    ("POST", "https://evil.example/messenger/v1/notices", {}),
    ("POST", "https://messenger.example:8443/messenger/v1/notices", {}),
])
def test_tampered_request_breaks_the_signature(method: str, url: str,
                                              header_change: dict[str, str],
                                              clock: FakeClock) -> None:
    """Another method, host, port, path or content type than signed is refused."""
    key = generate_key()
    headers = {**signed_headers(key, clock), **header_change}
    assert refusal(verifier_for(key, clock), headers, method=method,
                   url=url) == "SIGNATURE_INVALID"


def test_notice_signed_by_another_key_is_refused(key: PrivateKey, clock: FakeClock) -> None:
    """A signature presenting the registered keyid but made with another key fails."""
    for forger in (generate_key(), generate_key("ES256")):
        headers = signed_headers(forger, clock, keyid=key.kid)
        assert refusal(verifier_for(key, clock), headers) == "SIGNATURE_INVALID"


def test_old_notice_is_refused(key: PrivateKey, clock: FakeClock) -> None:
    """A signature is accepted up to ``max_age`` seconds after ``created``, then refused."""
    headers = signed_headers(key, clock)
    clock.advance(300)
    assert verifier_for(key, clock).verify("POST", URL, headers, BODY) == key.kid
    clock.advance(1)
    assert refusal(verifier_for(key, clock), headers) == "SIGNATURE_EXPIRED"


def test_notice_dated_in_the_future_is_refused(clock: FakeClock) -> None:
    """``created`` may run ahead of the receiver's clock by MAX_SKEW seconds, no more."""
    key = generate_key()
    sender_clock = FakeClock(clock.now())
    sender_clock.advance(MAX_SKEW)
    verifier = verifier_for(key, clock)
    assert verifier.verify("POST", URL, signed_headers(key, sender_clock), BODY) == key.kid
    sender_clock.advance(1)
    assert refusal(verifier, signed_headers(key, sender_clock)) == "SIGNATURE_EXPIRED"


def test_notice_from_an_unknown_key_is_refused(clock: FakeClock) -> None:
    """A keyid nobody registered is refused before any signature work."""
    headers = signed_headers(generate_key(), clock)
    assert refusal(verifier_for(generate_key(), clock), headers) == "UNKNOWN_KEY"


@pytest.mark.parametrize("drop", ["Signature", "Signature-Input"])
def test_unsigned_notice_is_refused(drop: str, clock: FakeClock) -> None:
    """Without both signature headers there is nothing to verify."""
    key = generate_key()
    headers = signed_headers(key, clock)
    del headers[drop]
    assert refusal(verifier_for(key, clock), headers) == "SIGNATURE_MISSING"


def test_a_signature_with_another_tag_does_not_count(clock: FakeClock) -> None:
    """Only a signature tagged numident-notice is a notice signature."""
    key = generate_key()
    headers = signed_headers(key, clock)
    headers["Signature-Input"] = headers["Signature-Input"].replace(TAG, "something-else")
    assert refusal(verifier_for(key, clock), headers) == "SIGNATURE_MISSING"


@pytest.mark.parametrize(("signature_input", "code"), [
    ("notice=(", "SIGNATURE_INVALID"),
    ("ünïcode", "SIGNATURE_INVALID"),
    ('notice="x"', "SIGNATURE_MISSING"),
    ('a=("@method");tag="numident-notice";keyid="k1", b=("@method");tag="numident-notice"'
     ';keyid="k2"', "SIGNATURE_INVALID"),
])
def test_garbled_signature_input_is_refused(signature_input: str, code: str,
                                            clock: FakeClock) -> None:
    """Not a structured dictionary: invalid; no tagged member: missing; two keyids: invalid."""
    key = generate_key()
    headers = {**signed_headers(key, clock), "Signature-Input": signature_input}
    assert refusal(verifier_for(key, clock), headers) == code


def test_created_is_taken_from_the_signers_clock() -> None:
    """The signer stamps ``created`` with the time it is given, not the wall clock."""
    then = FakeClock(datetime(2030, 6, 1, tzinfo=UTC))
    added = NoticeSigner(generate_key(), now=then.now).sign("POST", URL, BODY, dict(HEADERS))
    assert f";created={int(then.now().timestamp())};" in added["Signature-Input"]


def test_verification_reads_time_from_the_clock_port() -> None:
    """A notice signed and verified at a fake 2030 is fresh: no wall-clock check interferes."""
    later = FakeClock(datetime(2030, 6, 1, tzinfo=UTC))
    key = generate_key()
    assert verifier_for(key, later).verify("POST", URL, signed_headers(key, later),
                                           BODY) == key.kid
