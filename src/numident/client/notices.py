"""Notices from an operator (SPEC rule 7): verified, then read as a :class:`Notice`.

A notice is a CloudEvent 1.0 of type ``org.numident.notice.<kind>`` with
``data.identificationCode``, in either HTTP content mode: structured (``Content-Type:
application/cloudevents+json``, the whole event in the body) or binary (the attributes in
``ce-*`` headers, the data as the JSON body). It is signed by the operator's notice key
(RFC 9421, :mod:`numident.client.signatures`); in binary mode every ``ce-*`` header must be
covered by the signature too, or an attacker could relabel a signed body.

:func:`read_notice` verifies and parses; a bad signature is
:class:`~numident.errors.Unauthenticated` with the verifier's code, a body that is not a
numident notice :class:`~numident.errors.InvalidInput` with code ``INVALID_NOTICE``.
What the notice does to an account is the receiver's matter (``numident.messenger.notices``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from numident.client.signatures import NoticeVerifier
from numident.core.identification import validate_identification_code
from numident.core.notices import NoticeType
from numident.errors import InvalidInput


@dataclass(frozen=True)
class Notice:
    event_id: str
    """The CloudEvent ``id``: the sender delivers at least once, so receivers deduplicate on it."""
    type: NoticeType
    identification_code: str
    phone_number: str | None
    occurred_at: datetime | None


def read_notice(verifier: NoticeVerifier, method: str, url: str, headers: Mapping[str, str],
                body: bytes) -> tuple[str, Notice]:
    """The signing key's id and the notice of one request, verified (see the module's contract).

    ``url`` is the absolute URL the operator addressed (its registered notice URL).
    """
    binary = _is_binary(headers)
    keyid = verifier.verify(
        method, url, headers, body,
        also_covered=sorted({*_REQUIRED_CE_HEADERS, *_ce_headers(headers)}) if binary else ())
    return keyid, parse_notice(headers, body)


def parse_notice(headers: Mapping[str, str], body: bytes) -> Notice:
    """The notice in a request's headers and body, or ``InvalidInput`` (``INVALID_NOTICE``).

    Reads without verifying: call :func:`read_notice` for a request from the network.
    """
    return _parse(headers, body, binary=_is_binary(headers))


_REQUIRED_CE_HEADERS = ("ce-id", "ce-source", "ce-specversion", "ce-type")
_FORMAT = JSONFormat()


def _is_binary(headers: Mapping[str, str]) -> bool:
    """Binary content mode, unless the content type names the structured JSON format.

    The HTTP binding tells the modes apart by the content type; a structured event with stray
    ``ce-*`` headers is still structured (its headers are ignored).
    """
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return not content_type.lower().startswith("application/cloudevents")


def _ce_headers(headers: Mapping[str, str]) -> set[str]:
    return {name.lower() for name in headers if name.lower().startswith("ce-")}


def _parse(headers: Mapping[str, str], body: bytes, *, binary: bool) -> Notice:
    message = HTTPMessage(dict(headers), body)
    try:
        event = (from_binary(message, _FORMAT, CloudEvent) if binary
                 else from_structured(message, _FORMAT, CloudEvent))
        if event.get_specversion() != "1.0":
            raise ValueError("not a CloudEvents 1.0 event")
        event_id = event.get_id()
        if not 0 < len(event_id) <= 128:
            raise ValueError("id must be a string of 1-128 characters")
        kind = NoticeType.from_cloudevent_type(event.get_type())
        data = event.get_data()
        if not isinstance(data, dict):
            raise ValueError("data must be a JSON object")
        code = validate_identification_code(data["identificationCode"])
        occurred = _time(data.get("occurredAt")) or event.get_time()
        if occurred is not None and occurred.tzinfo is None:
            raise ValueError("time must carry a time zone")
        phone = data.get("phoneNumber")
        if not isinstance(phone, str) or len(phone) > 16:
            phone = None
        return Notice(event_id, kind, code, phone, occurred)
    except (BaseCloudEventException, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"the notice is not a numident CloudEvent: {exc}",
                           code="INVALID_NOTICE") from exc


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("occurredAt must carry a time zone")
    return parsed
