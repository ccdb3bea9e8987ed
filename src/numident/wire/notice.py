"""The notice (SPEC rule 7) as a CloudEvent 1.0: written by the gateway, read by the messenger
and by ``numident.client``.

A notice is of type ``org.numident.notice.<kind>`` with ``data``
``{"phoneNumber","identificationCode","occurredAt","reason","eventId"?}``.
:func:`to_cloudevent` writes it in structured mode (``application/cloudevents+json``; ``time``
and ``data.occurredAt`` are both the event's time). :func:`from_cloudevent` reads either HTTP
content mode with the CloudEvents SDK: structured (the whole event in the body) or binary (the
attributes in ``ce-*`` headers, the data as the JSON body); anything that is not a numident
notice is :class:`~numident.errors.InvalidInput` with code ``INVALID_NOTICE``. Signatures are
the transport's matter (:mod:`numident.client.signatures`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from numident.core.clock import parse_rfc3339, rfc3339
from numident.core.identification import validate_identification_code
from numident.core.notices import NoticeType
from numident.errors import InvalidInput

CONTENT_TYPE = "application/cloudevents+json"
"""The content type of a notice in structured mode."""

REQUIRED_CE_HEADERS = ("ce-id", "ce-source", "ce-specversion", "ce-type")
"""The attributes a binary-mode notice carries in headers."""


@dataclass(frozen=True)
class Notice:
    event_id: str
    """The CloudEvent ``id``: the sender delivers at least once, so receivers deduplicate on it."""
    type: NoticeType
    identification_code: str
    phone_number: str | None
    occurred_at: datetime | None
    lifecycle_event_id: str | None = None
    """``data.eventId``: the operator's id of the lifecycle event, when it has one."""


def to_cloudevent(notice: Notice, source: str) -> bytes:
    """``notice`` from ``source`` as a CloudEvents 1.0 JSON document (structured mode)."""
    occurred = rfc3339(notice.occurred_at)
    data: dict[str, Any] = {
        "phoneNumber": notice.phone_number,
        "identificationCode": notice.identification_code,
        **({"occurredAt": occurred} if occurred else {}),
        "reason": notice.type.value,
        **({"eventId": notice.lifecycle_event_id} if notice.lifecycle_event_id else {}),
    }
    document = {
        "specversion": "1.0",
        "id": notice.event_id,
        "source": source,
        "type": notice.type.cloudevent_type,
        **({"time": occurred} if occurred else {}),
        "datacontenttype": "application/json",
        "data": data,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def is_binary(headers: Mapping[str, str]) -> bool:
    """Binary content mode, unless the content type names the structured JSON format.

    The HTTP binding tells the modes apart by the content type; a structured event with stray
    ``ce-*`` headers is still structured (its headers are ignored).
    """
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return not content_type.lower().startswith("application/cloudevents")


def ce_headers(headers: Mapping[str, str]) -> set[str]:
    """The names of the ``ce-*`` headers in ``headers``, lower-cased."""
    return {name.lower() for name in headers if name.lower().startswith("ce-")}


_FORMAT = JSONFormat()


def from_cloudevent(headers: Mapping[str, str], body: bytes) -> Notice:
    """The notice in a request's headers and body, in either content mode (see the module's
    contract), or ``InvalidInput`` (``INVALID_NOTICE``)."""
    message = HTTPMessage(dict(headers), body)
    try:
        event = (from_binary(message, _FORMAT, CloudEvent) if is_binary(headers)
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
        occurred_at = data.get("occurredAt")
        occurred = (parse_rfc3339(occurred_at) if isinstance(occurred_at, str)
                    else event.get_time())
        if occurred is not None and occurred.tzinfo is None:
            raise ValueError("time must carry a time zone")
        phone = data.get("phoneNumber")
        if not isinstance(phone, str) or len(phone) > 16:
            phone = None
        lifecycle_event = data.get("eventId")
        return Notice(event_id, kind, code, phone, occurred,
                      lifecycle_event if isinstance(lifecycle_event, str) else None)
    except (BaseCloudEventException, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"the notice is not a numident CloudEvent: {exc}",
                           code="INVALID_NOTICE") from exc
