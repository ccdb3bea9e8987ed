"""CAMARA Know Your Customer Match: do these attributes match the line's holder?

``POST /match`` compares each attribute given with what the billing export holds for the
line's current holder (:mod:`numident.camara.holders`) and answers, for that attribute only,
``true``, ``false`` or ``not_available``; a ``false`` on a text attribute the response schema
scores also carries its ``...MatchScore`` (0-99). How values are normalised and scored, and how
a full name or address is compared with a holder stored as parts, is in
:mod:`numident.camara.matching`. Stored attributes are never returned.

The scored attributes are stored as exported and compared as text (:class:`Clear`), as is the
house number extension, a part of the scored address. The others (:class:`Keyed`) are stored
only as digests under the installation's holder key
(:mod:`numident.camara.holder_key`): the given value's normal form is digested the same way and
the digests are compared in constant time. Digests stored under another key than the gateway's
(an import run with another ``operator.camara.holder_key`` or home) cannot be compared: those
attributes are ``not_available``, as the operator cannot tell, never ``false``, which would
wrongly tell the organizer the customer differs from the holder; a warning is logged.

Refusals, in order: an empty body is 400 ``INVALID_ARGUMENT``; a body with nothing but
``phoneNumber`` is 400 ``KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION``; with a three-legged
token a ``phoneNumber`` other than the token's is 403 ``INVALID_TOKEN_CONTEXT`` (the same one
is accepted); with a two-legged token a missing ``phoneNumber`` is 422 ``MISSING_IDENTIFIER``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Request
from pydantic import Field, create_model

from numident.camara.common import (
    Caller,
    CamaraModel,
    PhoneNumber,
    caller_with,
    error_responses,
    registry_line,
    subject,
)
from numident.camara.dates import CalendarDate
from numident.camara.holder_key import HolderKey
from numident.camara.holders import (
    BANK_ACCOUNT_PATTERN,
    COUNTRY_PATTERN,
    EMAIL_PATTERN,
    KEYED,
    Holder,
    current_holder,
)
from numident.camara.matching import (
    NOT_AVAILABLE,
    Outcome,
    Verdict,
    Way,
    compare,
    joined,
    normal_form,
)
from numident.errors import InvalidInput, PermissionDenied

VERSION = "vwip"
SCOPE = "kyc-match:match"
log = structlog.get_logger(__name__)
router = APIRouter(prefix=f"/kyc-match/{VERSION}", tags=["Match"],
                   responses=error_responses(400, 401, 403, 404, 422))

Country = Annotated[str, Field(pattern=COUNTRY_PATTERN, min_length=2, max_length=2,
                               description="ISO 3166-1 alpha-2")]


def _text(limit: int) -> Any:
    return Field(None, max_length=limit)


class KYC_MatchRequestBody(CamaraModel):
    """The attributes to compare; at least one besides ``phoneNumber``."""

    phoneNumber: PhoneNumber | None = None
    idDocument: str | None = _text(50)
    idDocumentType: Literal["passport", "national_id_card", "residence_permit",
                            "diplomatic_id", "driver_licence", "social_security_id",
                            "other"] | None = None
    idDocumentExpiryDate: CalendarDate | None = None
    bankAccountNumber: str | None = Field(None, max_length=50, pattern=BANK_ACCOUNT_PATTERN)
    name: str | None = _text(256)
    givenName: str | None = _text(100)
    familyName: str | None = _text(150)
    nameKanaHankaku: str | None = _text(256)
    nameKanaZenkaku: str | None = _text(256)
    middleNames: str | None = _text(100)
    familyNameAtBirth: str | None = _text(150)
    address: str | None = _text(256)
    streetName: str | None = _text(150)
    streetNumber: str | None = _text(20)
    postalCode: str | None = _text(20)
    region: str | None = _text(100)
    locality: str | None = _text(100)
    country: Country | None = None
    houseNumberExtension: str | None = _text(20)
    birthdate: CalendarDate | None = None
    email: str | None = Field(None, max_length=254, pattern=EMAIL_PATTERN)
    gender: Literal["MALE", "FEMALE", "OTHER"] | None = None
    cityOfBirth: str | None = _text(100)
    countryOfBirth: Country | None = None
    nationality: Country | None = None


Candidates = Callable[[Holder], list[str | None]]


def _column(name: str) -> Candidates:
    return lambda holder: [holder[name]]


def _full_names(holder: Holder) -> list[str | None]:
    """The stored full name, else the usual joins of its parts (order varies by country)."""
    if holder["name"]:
        return [holder["name"]]
    given, middle = holder["given_name"], holder["middle_names"]
    family, at_birth = holder["family_name"], holder["family_name_at_birth"]
    return [joined(given, middle, family), joined(given, family), joined(family, given),
            joined(family, given, middle), joined(given, middle, at_birth),
            joined(given, at_birth)]


def _addresses(holder: Holder) -> list[str | None]:
    """The stored address, else street name and number (and extension), either way round."""
    if holder["address"]:
        return [holder["address"]]
    street, number = holder["street_name"], holder["street_number"]
    extension = holder["house_number_extension"]
    return [joined(street, number, extension), joined(street, number),
            joined(number, street, extension), joined(number, street)]


@dataclass(frozen=True)
class Clear:
    """An attribute compared (and scored, if its way is) with the stored text of candidates."""

    way: Way
    candidates: Candidates


@dataclass(frozen=True)
class Keyed:
    """An attribute compared only for equality, with the digest stored in ``column``."""

    column: str

    @property
    def way(self) -> Way:
        return KEYED[self.column]


FIELDS: dict[str, Clear | Keyed] = {
    "idDocument": Keyed("id_document"),
    "idDocumentType": Keyed("id_document_type"),
    "idDocumentExpiryDate": Keyed("id_document_expiry_date"),
    "bankAccountNumber": Keyed("bank_account_number"),
    "name": Clear(Way.TEXT, _full_names),
    "givenName": Clear(Way.TEXT, _column("given_name")),
    "familyName": Clear(Way.TEXT, _column("family_name")),
    "nameKanaHankaku": Clear(Way.TEXT, _column("name_kana_hankaku")),
    "nameKanaZenkaku": Clear(Way.TEXT, _column("name_kana_zenkaku")),
    "middleNames": Clear(Way.TEXT, _column("middle_names")),
    "familyNameAtBirth": Clear(Way.TEXT, _column("family_name_at_birth")),
    "address": Clear(Way.TEXT, _addresses),
    "streetName": Clear(Way.TEXT, _column("street_name")),
    "streetNumber": Clear(Way.TEXT, _column("street_number")),
    "postalCode": Keyed("postal_code"),
    "region": Clear(Way.TEXT, _column("region")),
    "locality": Clear(Way.TEXT, _column("locality")),
    "country": Keyed("country"),
    "houseNumberExtension": Clear(Way.IDENTIFIER, _column("house_number_extension")),
    "birthdate": Keyed("birthdate"),
    "email": Clear(Way.EMAIL, _column("email")),
    "gender": Keyed("gender"),
    "cityOfBirth": Clear(Way.TEXT, _column("city_of_birth")),
    "countryOfBirth": Keyed("country_of_birth"),
    "nationality": Keyed("nationality"),
}
"""Each request attribute: how it is compared and with which stored values."""

MatchResult = Literal["true", "false", "not_available"]
Score = Annotated[int, Field(ge=0, le=99)]


def _response_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, rule in FIELDS.items():
        fields[f"{name}Match"] = (MatchResult | None, None)
        if rule.way.scored:
            fields[f"{name}MatchScore"] = (Score | None, None)
    return fields


KYC_MatchResponse = create_model("KYC_MatchResponse", **_response_fields())


def match(given: dict[str, Any], holder: Holder, key: HolderKey, phone_number: str
          ) -> dict[str, object]:
    """The response body for the attributes ``given`` (request names, non-null values)."""
    answer: dict[str, object] = {}
    for name, value in given.items():
        rule = FIELDS[name]
        text = value.isoformat() if isinstance(value, date) else str(value)
        if isinstance(rule, Clear):
            outcome = compare(rule.way, text, (c for c in rule.candidates(holder) if c))
        else:
            outcome = compare_keyed(rule, text, holder, key, phone_number)
        answer[f"{name}Match"] = outcome.verdict.value
        if outcome.verdict is Verdict.FALSE and outcome.score is not None:
            answer[f"{name}MatchScore"] = outcome.score
    return answer


def compare_keyed(rule: Keyed, given: str, holder: Holder, key: HolderKey, phone_number: str
                  ) -> Outcome:
    """The verdict on ``given`` against the digest stored for the holder under ``key``."""
    stored = holder[rule.column]
    if stored is None:
        return NOT_AVAILABLE
    if holder["holder_key_id"] != key.id:
        log.warning("holder attributes stored under another holder key cannot be compared",
                    stored_key_id=holder["holder_key_id"], key_id=key.id)
        return NOT_AVAILABLE
    matched = key.matches(stored, rule.column, phone_number, normal_form(rule.way, given))
    return Outcome(Verdict.TRUE if matched else Verdict.FALSE)


def installation_key(request: Request) -> HolderKey:
    """The gateway's holder key (``app.state.holder_key``)."""
    key: HolderKey = request.app.state.holder_key
    return key


def kyc_subject(caller: Caller, given: str | None) -> str:
    """The line: the token's (a ``phoneNumber`` in the body must be the same) or the body's."""
    if caller.phone_number is not None and given is not None:
        if given != caller.phone_number:
            raise PermissionDenied("phoneNumber is not consistent with the access token",
                                   code="INVALID_TOKEN_CONTEXT")
        given = None
    return subject(caller, given)


@router.post("/match", operation_id="KYC_Match", response_model=KYC_MatchResponse,
             response_model_exclude_none=True,
             summary="Match a customer's attributes with the holder of their phone number")
def match_customer(body: KYC_MatchRequestBody,
                   caller: Annotated[Caller, Depends(caller_with(SCOPE))],
                   key: Annotated[HolderKey, Depends(installation_key)]) -> dict[str, object]:
    given = body.model_dump(exclude_none=True)
    number = given.pop("phoneNumber", None)
    if not given and number is None:
        raise InvalidInput("the request body has no attributes to match")
    if not given:
        raise InvalidInput("give at least one attribute besides phoneNumber",
                           code="KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION")
    line = registry_line(caller.engine, kyc_subject(caller, number))
    return match(given, current_holder(caller.engine, line.phone_number), key,
                 line.phone_number)
