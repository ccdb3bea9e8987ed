"""What an organizer's backend needs to call an operator gateway, without the servers.

Installed by ``pip install numident`` alone (the servers and the CLI need
``numident[server]``); it imports cryptography, joserfc, http-message-signatures, cloudevents
and httpx2, nothing else::

    key = load_private_key(Path("organizer.key"))
    async with GatewayClient("https://gw.operator.example", "my-messenger", key) as gateway:
        reply = await gateway.submit("+79161234567", "user-42")
        # Answer(result=Result.CONFIRMED, ...) | TryLater(reason, retry_after) | Refused(reason)

    verifier = NoticeVerifier(lambda keyid: operator_key if keyid == operator_key.kid else None,
                              SystemClock())
    keyid, notice = read_notice(verifier, "POST", notice_url, headers, body)

``keys`` (key pairs, JWK and PEM files) -> ``assertions`` (``private_key_jwt``, RFC 7523)
-> ``gateway`` (tokens cached until shortly before expiry; identification single and batch,
withdrawal of a usage) ; ``signatures`` (RFC 9421 notice signatures) -> ``notices`` (the
CloudEvent read as a :class:`Notice`). The answer and the notice are read by the code that
writes them on the gateway (:mod:`numident.wire`). Gateway calls are ``async`` (httpx2) and
return values for every outcome; refused notices raise :class:`~numident.errors.Unauthenticated` or
:class:`~numident.errors.InvalidInput` with a stable ``code``.
"""

from numident.client.assertions import ASSERTION_TYPE, make_client_assertion, token_request_form
from numident.client.gateway import (
    Answer,
    GatewayClient,
    Refused,
    Reply,
    TryLater,
    Withdrawn,
)
from numident.client.keys import (
    PrivateKey,
    PublicKey,
    generate_key,
    load_private_key,
    load_public_key,
    save_private_key,
    save_public_key,
)
from numident.client.notices import Notice, parse_notice, read_notice
from numident.client.signatures import NoticeSigner, NoticeVerifier
from numident.core.clock import Clock, SystemClock
from numident.core.identification import Result
from numident.core.notices import NoticeType
from numident.errors import InvalidInput, NumidentError, Unauthenticated

__all__ = [
    "ASSERTION_TYPE",
    "Answer",
    "Clock",
    "GatewayClient",
    "InvalidInput",
    "Notice",
    "NoticeSigner",
    "NoticeType",
    "NoticeVerifier",
    "NumidentError",
    "PrivateKey",
    "PublicKey",
    "Refused",
    "Reply",
    "Result",
    "SystemClock",
    "TryLater",
    "Unauthenticated",
    "Withdrawn",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "make_client_assertion",
    "parse_notice",
    "read_notice",
    "save_private_key",
    "save_public_key",
    "token_request_form",
]
