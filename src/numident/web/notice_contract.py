"""The notice contract as the OpenAPI documents declare it (the profile is ``docs/notices.md``).

The gateway sends notices (its document's ``webhooks``) and the messenger receives them
(``POST /messenger/v1/notices``); both documents take the event's schema, the signature headers
and the delivery rules from here, so the two sides cannot describe different contracts. The
models document the body; the receiver parses it with the CloudEvents SDK and checks the
signature itself, which is why its errors are its own (``INVALID_NOTICE``, ``SIGNATURE_*``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from numident.core.identification import IDENTIFICATION_CODE_PATTERN
from numident.core.notices import CLOUDEVENT_TYPE_PREFIX, NoticeType

DATE_TIME: dict[str, Any] = {"format": "date-time"}

DELIVERY = (
    "One HTTPS POST per event to the organizer's notice URL, in CloudEvents structured mode, "
    "signed with HTTP Message Signatures (RFC 9421, tag numident-notice) over Content-Digest "
    "(RFC 9530). A 200 ends delivery. A 5xx or no answer is retried with exponential backoff "
    "and the same event id (signed anew) for up to 24 hours, after which the notice is dead; "
    "a 4xx is not retried. The receiver deduplicates by (operator, id): a repeat is answered "
    "200 with duplicate true and changes nothing.")


class NoticeData(BaseModel):
    """What the notice is about."""

    identificationCode: str = Field(json_schema_extra={"pattern": IDENTIFICATION_CODE_PATTERN},
                                    description="The code of the organizer's request")
    phoneNumber: str = Field(examples=["+79161234567"], description="E.164")
    occurredAt: str | None = Field(None, json_schema_extra=DATE_TIME,
                                   description="When the event happened (default: time)")
    reason: NoticeType | None = Field(None, description="The kind, as in type")
    eventId: str | None = Field(None, description="The operator's id of the lifecycle event")


class Notice(BaseModel):
    """A notice as a CloudEvent 1.0 in structured mode."""

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=128,
                    description="Unique per sender; retries of one event reuse it")
    source: str = Field(json_schema_extra={"format": "uri-reference"},
                        examples=["https://gateway.alfa.example"])
    # Titled apart from NoticeType (the kinds), so generated clients name the two enums apart.
    type: str = Field(title="NoticeEventType", json_schema_extra={
        "enum": [CLOUDEVENT_TYPE_PREFIX + kind.value for kind in NoticeType]})
    time: str | None = Field(None, json_schema_extra=DATE_TIME)
    datacontenttype: Literal["application/json"] | None = None
    data: NoticeData


class NoticeReceipt(BaseModel):
    """The receiver's 200."""

    id: str
    type: NoticeType
    duplicate: bool = Field(description="true: this id was received before; nothing changed")
    accounts: int = Field(description="How many accounts the notice concerned")


def signature_headers() -> list[dict[str, Any]]:
    """The header parameters of a notice request."""

    def header(name: str, description: str, example: str) -> dict[str, Any]:
        return {"in": "header", "name": name, "required": True, "description": description,
                "schema": {"type": "string"}, "example": example}

    return [
        header("Content-Digest", "RFC 9530 digest of the exact body bytes",
               "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"),
        header("Signature-Input", "RFC 9421 signature parameters: covers @method, @authority, "
               "@path, content-type, content-digest (and the ce-* headers in binary mode); "
               "created, keyid and tag=\"numident-notice\" are required",
               'notice=("@method" "@authority" "@path" "content-type" "content-digest");'
               'created=1764579600;keyid="cMz2";alg="ed25519";tag="numident-notice"'),
        header("Signature", "RFC 9421 signature (ed25519 or ecdsa-p256-sha256) by the "
               "operator's registered key", "notice=:c2lnbmF0dXJl:"),
    ]
