"""What the billing export says about a line's holder, and how the registry keeps it.

The export's optional columns are ``contract_type`` and the KYC holder attributes, each named
as the snake_case of its KYC Match request property (:data:`ATTRIBUTES`). Empty means unknown.
:func:`parse_holder` checks one record's values (enums, dates, e-mail, lengths as the KYC Match
schema bounds them, no control characters) and reports the first bad field; the subscriber
import (:mod:`numident.operator.registry`) stores them with :func:`keyed_values`, both through
:data:`HOLDER_COLUMNS`, which the operator's composition root plugs into the import.

Only what KYC Match and Tenure need is kept, and only in the form they need it:

* the attributes KYC Match compares only for equality (:data:`KEYED`: id document and its type
  and expiry, bank account, postal code, country, birth date, gender, country of birth,
  nationality) are stored as keyed digests (HMAC-SHA256, hex) of their normal form, bound to
  the column and the line (:mod:`numident.trust.holder_key`); empty when the normal form is.
  Each row names the key's id (``holder_key_id``);
* the attributes KYC Match scores (names, address parts, places, e-mail) are stored as
  exported, because a Jaro-Winkler score needs the text; so is the house number extension,
  compared exactly on its own but also a part of the scored address, and ``contract_type``
  (Tenure answers it).

Each ``holders`` row names the contract and holder start it was exported with. A later holder
change (a reassignment or holder-change event, or an import with another contract or start)
makes :func:`current_holder` ignore it: attributes are never attributed to the next holder.
Nothing here returns attributes over an API; KYC Match only compares them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, select

from numident.camara.dates import FULL_DATE
from numident.camara.matching import Way, normal_form
from numident.operator.tables import holders, subscribers
from numident.storage.database import read_only
from numident.trust.holder_key import HolderKey

CONTRACT_TYPES = {"payg": "PAYG", "paym": "PAYM", "business": "Business"}
ID_DOCUMENT_TYPES = frozenset({"passport", "national_id_card", "residence_permit",
                               "diplomatic_id", "driver_licence", "social_security_id", "other"})
GENDERS = frozenset({"MALE", "FEMALE", "OTHER"})
COUNTRY_PATTERN = r"^[A-Za-z]{2}$"
BANK_ACCOUNT_PATTERN = r"^[A-Z]+:[A-Za-z0-9]+$"
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$"
"""local-part@domain, the domain with at least one dot: the shape the KYC Match schema means."""
_COUNTRY = re.compile(COUNTRY_PATTERN)
_BANK_ACCOUNT = re.compile(BANK_ACCOUNT_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)


def _text(limit: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"is longer than {limit} characters")
        if not value.isprintable():
            raise ValueError("holds a control character")
        return value
    return check


def _calendar_date(value: str) -> str:
    if not FULL_DATE.match(value):
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _country(value: str) -> str:
    if not _COUNTRY.match(value):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 code")
    return value.upper()


def _one_of(choices: Mapping[str, str], shown: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            return choices[value.lower()]
        except KeyError:
            raise ValueError(f"{value!r} is not one of {shown}") from None
    return check


def _email(value: str) -> str:
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address (local-part@domain)")
    return value


def _bank_account(value: str) -> str:
    if len(value) > 50 or not _BANK_ACCOUNT.match(value):
        raise ValueError(f"{value!r} is not PREFIX:VALUE (IBAN:NL59ABNA0123456789)")
    return value


CHECKS: dict[str, Callable[[str], str]] = {
    "contract_type": _one_of(CONTRACT_TYPES, "PAYG, PAYM, Business"),
    "id_document": _text(50),
    "id_document_type": _one_of({t: t for t in ID_DOCUMENT_TYPES},
                                ", ".join(sorted(ID_DOCUMENT_TYPES))),
    "id_document_expiry_date": _calendar_date,
    "bank_account_number": _bank_account,
    "name": _text(256),
    "given_name": _text(100),
    "family_name": _text(150),
    "name_kana_hankaku": _text(256),
    "name_kana_zenkaku": _text(256),
    "middle_names": _text(100),
    "family_name_at_birth": _text(150),
    "address": _text(256),
    "street_name": _text(150),
    "street_number": _text(20),
    "postal_code": _text(20),
    "region": _text(100),
    "locality": _text(100),
    "country": _country,
    "house_number_extension": _text(20),
    "birthdate": _calendar_date,
    "email": _email,
    "gender": _one_of({g.lower(): g for g in GENDERS}, "MALE, FEMALE, OTHER"),
    "city_of_birth": _text(100),
    "country_of_birth": _country,
    "nationality": _country,
}
COLUMNS: tuple[str, ...] = tuple(CHECKS)
"""The optional export columns, in the order a parsed row's values keep."""
ATTRIBUTES: tuple[str, ...] = COLUMNS[1:]
"""The KYC holder attributes (every optional column but ``contract_type``)."""

KEYED: dict[str, Way] = {
    "id_document": Way.IDENTIFIER, "id_document_type": Way.CODE,
    "id_document_expiry_date": Way.DATE, "bank_account_number": Way.IDENTIFIER,
    "postal_code": Way.IDENTIFIER, "country": Way.CODE, "birthdate": Way.DATE,
    "gender": Way.CODE, "country_of_birth": Way.CODE, "nationality": Way.CODE,
}
"""The attributes stored only as keyed digests, with the way that gives their normal form."""
_KEYED_AT = tuple((COLUMNS.index(column), column, way) for column, way in KEYED.items())

HolderValues = tuple[str | None, ...]
"""One row's optional values in :data:`COLUMNS` order; None is unknown."""


@dataclass(frozen=True)
class BadValue:
    column: str
    reason: str


def parse_holder(values: Sequence[str], at: Sequence[tuple[int, str]]
                 ) -> HolderValues | BadValue:
    """The optional values of one record (``at``: position and name of each column present),
    or the first bad one."""
    parsed: dict[str, str] = {}
    for position, column in at:
        raw = values[position].strip()
        if not raw:
            continue
        try:
            parsed[column] = CHECKS[column](raw)
        except ValueError as exc:
            return BadValue(column, str(exc))
    return tuple(parsed.get(column) for column in COLUMNS)


@dataclass(frozen=True)
class HolderRow:
    """What an import writes for one line: its contract, start and optional values."""

    phone_number: str
    contract_id: str
    activated_at: datetime | None
    values: HolderValues


def keyed_values(row: HolderRow, key: HolderKey | None) -> HolderValues:
    """The row's values with each :data:`KEYED` one replaced by its digest."""
    values = list(row.values)
    for at, column, way in _KEYED_AT:
        value = values[at]
        if value is None:
            continue
        if key is None:
            raise ValueError(f"{row.phone_number}: storing {column} needs the holder key")
        normal = normal_form(way, value)
        values[at] = key.digest(column, row.phone_number, normal) if normal else None
    return tuple(values)


class HolderColumns:
    """The holder attributes as the registry file's optional columns
    (:class:`numident.operator.export_file.OptionalColumns`, plugged into the operator's import
    by its composition root)."""

    names = COLUMNS

    def parse(self, values: Sequence[str], at: Sequence[tuple[int, str]]
              ) -> HolderValues | BadValue:
        return parse_holder(values, at)

    def stored(self, phone_number: str, contract_id: str, activated_at: datetime | None,
               values: HolderValues, key: HolderKey | None) -> HolderValues:
        return keyed_values(HolderRow(phone_number, contract_id, activated_at, values), key)


HOLDER_COLUMNS = HolderColumns()


Holder = Mapping[str, str | None]
"""The current holder's stored values by column name (every column of :data:`COLUMNS`, and
``holder_key_id``): :data:`KEYED` ones are digests."""
_READ = (*COLUMNS, "holder_key_id")


def current_holder(engine: Engine, phone_number: str) -> Holder:
    """The stored values of the line's *current* holder; all None when none apply.

    Values exported for another contract or holder start than the registry's current one,
    or for a terminated contract, belong to nobody who holds the line now.
    """
    with read_only(engine) as conn:
        row = conn.execute(
            select(*(holders.c[name] for name in _READ))
            .join(subscribers, subscribers.c.phone_number == holders.c.phone_number)
            .where(holders.c.phone_number == phone_number,
                   holders.c.contract_id == subscribers.c.contract_id,
                   subscribers.c.status != "terminated",
                   (holders.c.activated_at == subscribers.c.activated_at)
                   | (holders.c.activated_at.is_(None) & subscribers.c.activated_at.is_(None)))
        ).first()
    if row is None:
        return dict.fromkeys(_READ)
    return dict(row._mapping)
