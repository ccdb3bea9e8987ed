"""Notices from an operator (SPEC rule 7): verified, then read as a :class:`Notice`.

A notice is a CloudEvent 1.0 of type ``org.numident.notice.<kind>`` with
``data.identificationCode``, in either HTTP content mode (its format is
:mod:`numident.wire.notice`). It is signed by the operator's notice key (RFC 9421,
:mod:`numident.client.signatures`); in binary mode every ``ce-*`` header must be covered by
the signature too, or an attacker could relabel a signed body.

:func:`read_notice` verifies and parses; a bad signature is
:class:`~numident.errors.Unauthenticated` with the verifier's code, a body that is not a
numident notice :class:`~numident.errors.InvalidInput` with code ``INVALID_NOTICE``.
What the notice does to an account is the receiver's matter (``numident.messenger.notices``).
"""

from __future__ import annotations

from collections.abc import Mapping

from numident.client.signatures import NoticeVerifier
from numident.wire.notice import (
    REQUIRED_CE_HEADERS,
    Notice,
    ce_headers,
    from_cloudevent,
    is_binary,
)

__all__ = ["Notice", "parse_notice", "read_notice"]


def read_notice(verifier: NoticeVerifier, method: str, url: str, headers: Mapping[str, str],
                body: bytes) -> tuple[str, Notice]:
    """The signing key's id and the notice of one request, verified (see the module's contract).

    ``url`` is the absolute URL the operator addressed (its registered notice URL).
    """
    keyid = verifier.verify(
        method, url, headers, body,
        also_covered=(sorted({*REQUIRED_CE_HEADERS, *ce_headers(headers)})
                      if is_binary(headers) else ()))
    return keyid, parse_notice(headers, body)


def parse_notice(headers: Mapping[str, str], body: bytes) -> Notice:
    """The notice in a request's headers and body, or ``InvalidInput`` (``INVALID_NOTICE``).

    Reads without verifying: call :func:`read_notice` for a request from the network.
    """
    return from_cloudevent(headers, body)
