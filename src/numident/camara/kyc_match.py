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
(:mod:`numident.trust.holder_key`): the given value's normal form is digested the same way and
the digests are compared in constant time. Digests stored under another key than the gateway's
(an import run with another ``operator.camara.holder_key`` or home) cannot be compared: those
attributes are ``not_available``, as the operator cannot tell, never ``false``, which would
wrongly tell the organizer the customer differs from the holder; a warning is logged.

Refusals, in order: an empty body is 400 ``INVALID_ARGUMENT``; a body with nothing but
``phoneNumber`` is 400 ``KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION``; with a three-legged
token a ``phoneNumber`` other than the token's is 403 ``INVALID_TOKEN_CONTEXT`` (the same one
is accepted); with a two-legged token a missing ``phoneNumber`` is 422 ``MISSING_IDENTIFIER``;
then, where the version defines second-level validation and the operator requires it, a body
without ``idDocument`` is 403 ``KNOW_YOUR_CUSTOMER.ID_DOCUMENT_REQUIRED`` and one whose
``idDocument`` is not the holder's 403 ``KNOW_YOUR_CUSTOMER.ID_DOCUMENT_MISMATCH``, before any
other attribute is compared.

The versions differ as :data:`DEFINITIONS` says: 0.4.0 has no ``bankAccountNumber``, no
length limits and free-form countries, and defines second-level validation; WIP has the
limits and the bank account, and no second-level validation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, create_model

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
from numident.camara.releases import WIP, Release
from numident.errors import InvalidInput, PermissionDenied
from numident.trust.holder_key import HolderKey

SCOPE = "kyc-match:match"
log = structlog.get_logger(__name__)

Country = Annotated[str, Field(pattern=COUNTRY_PATTERN, min_length=2, max_length=2,
                               description="ISO 3166-1 alpha-2")]
DocumentType = Literal["passport", "national_id_card", "residence_permit", "diplomatic_id",
                       "driver_licence", "social_security_id", "other"]


@dataclass(frozen=True)
class Definition:
    """What one version of the API defines its own way (the rest is the same in all).

    ``bank_account``: the request has ``bankAccountNumber`` (and the response its match);
    ``limits``: text properties have ``maxLength`` and countries are ISO 3166-1 alpha-2 codes,
    else any string; ``id_document_validation``: the version defines second-level validation
    (403 ``KNOW_YOUR_CUSTOMER.ID_DOCUMENT_REQUIRED`` / ``ID_DOCUMENT_MISMATCH``), which the
    operator switches on with ``operator.camara.kyc_match_id_document_required``.
    """

    bank_account: bool
    limits: bool
    id_document_validation: bool

    @property
    def attributes(self) -> list[str]:
        return [name for name in FIELDS if self.bank_account or name != "bankAccountNumber"]


DEFINITIONS: dict[str, Definition] = {
    "v0.4": Definition(bank_account=False, limits=False, id_document_validation=True),
    WIP: Definition(bank_account=True, limits=True, id_document_validation=False),
}
"""Each release's :class:`Definition`, by path segment (r1.2 is 0.4.0)."""


REQUEST_BODY = "The attributes to compare; at least one besides ``phoneNumber``."


def request_body(definition: Definition) -> type[CamaraModel]:
    """The request body of a version (its schema's description is :data:`REQUEST_BODY`)."""
    limits = definition.limits

    def text(limit: int, **constraints: Any) -> tuple[Any, Any]:
        return str | None, Field(None, max_length=limit if limits else None, **constraints)

    country: Any = (Country if limits else str) | None
    fields: dict[str, tuple[Any, Any]] = {
        "phoneNumber": (PhoneNumber | None, None),
        "idDocument": text(50),
        "idDocumentType": (DocumentType | None, None),
        "idDocumentExpiryDate": (CalendarDate | None, None),
        "bankAccountNumber": text(50, pattern=BANK_ACCOUNT_PATTERN),
        "name": text(256), "givenName": text(100), "familyName": text(150),
        "nameKanaHankaku": text(256), "nameKanaZenkaku": text(256), "middleNames": text(100),
        "familyNameAtBirth": text(150), "address": text(256), "streetName": text(150),
        "streetNumber": text(20), "postalCode": text(20), "region": text(100),
        "locality": text(100), "country": (country, None), "houseNumberExtension": text(20),
        "birthdate": (CalendarDate | None, None), "email": text(254, pattern=EMAIL_PATTERN),
        "gender": (Literal["MALE", "FEMALE", "OTHER"] | None, None),
        "cityOfBirth": text(100), "countryOfBirth": (country, None),
        "nationality": (country, None)}
    wanted = {name: fields[name] for name in ["phoneNumber", *definition.attributes]}
    model: type[CamaraModel] = create_model(  # type: ignore[call-overload]
        "KYC_MatchRequestBody", __base__=CamaraModel, __doc__=REQUEST_BODY, **wanted)
    return model


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


def response_body(definition: Definition) -> type[BaseModel]:
    """The response of a version: a verdict for each attribute given, and its score."""
    fields: dict[str, Any] = {}
    for name in definition.attributes:
        fields[f"{name}Match"] = (MatchResult | None, None)
        if FIELDS[name].way.scored:
            fields[f"{name}MatchScore"] = (Score | None, None)
    return create_model("KYC_MatchResponse", **fields)


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


def check_id_document(given: dict[str, Any], holder: Holder, key: HolderKey,
                      phone_number: str) -> None:
    """Second-level validation: 403 unless ``idDocument`` is given and is the holder's (one
    that cannot be compared, none being stored, does not pass either)."""
    if "idDocument" not in given:
        raise PermissionDenied("The idDocument is required to perform the properties "
                               "validation", code="KNOW_YOUR_CUSTOMER.ID_DOCUMENT_REQUIRED")
    rule = FIELDS["idDocument"]
    assert isinstance(rule, Keyed)
    if compare_keyed(rule, str(given["idDocument"]), holder, key,
                     phone_number).verdict is not Verdict.TRUE:
        raise PermissionDenied("The idDocument needs to match the one associated with the "
                               "provided phoneNumber",
                               code="KNOW_YOUR_CUSTOMER.ID_DOCUMENT_MISMATCH")


def answer(definition: Definition, body: BaseModel, caller: Caller, key: HolderKey
           ) -> dict[str, object]:
    """The response to ``body`` (see the module docstring for the refusals and their order)."""
    given = body.model_dump(exclude_none=True)
    number = given.pop("phoneNumber", None)
    if not given and number is None:
        raise InvalidInput("the request body has no attributes to match")
    if not given:
        raise InvalidInput("give at least one attribute besides phoneNumber",
                           code="KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION")
    line = registry_line(caller.engine, kyc_subject(caller, number))
    holder = current_holder(caller.engine, line.phone_number)
    if definition.id_document_validation and caller.settings.kyc_match_id_document_required:
        check_id_document(given, holder, key, line.phone_number)
    return match(given, holder, key, line.phone_number)


def router_for(release: Release) -> APIRouter:
    """The API as ``release`` defines it (:data:`DEFINITIONS`)."""
    definition = DEFINITIONS[release.segment]
    router = APIRouter(tags=["Match"], responses=error_responses(400, 401, 403, 404, 422))

    def match_customer(body: BaseModel,
                       caller: Annotated[Caller, Depends(caller_with(SCOPE))],
                       key: Annotated[HolderKey, Depends(installation_key)]
                       ) -> dict[str, object]:
        return answer(definition, body, caller, key)

    # FastAPI validates and documents the body by this annotation: the version's own model.
    match_customer.__annotations__["body"] = request_body(definition)
    router.add_api_route(
        "/match", match_customer, methods=["POST"], operation_id="KYC_Match",
        response_model=response_body(definition), response_model_exclude_none=True,
        summary="Match a customer's attributes with the holder of their phone number")
    return router
