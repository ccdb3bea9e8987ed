"""Subscriber numbers: parsed once at the boundary, stored and compared only in E.164.

Parsing uses Google's libphonenumber rules (``phonenumbers``), never regular expressions.
Only ASCII input is accepted: a number written with other scripts' digits is refused rather
than silently folded, so that what is stored is exactly what the caller meant.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import phonenumbers

from numident.errors import InvalidPhoneNumber

MAX_INPUT_LENGTH = 32
_ALLOWED = frozenset("+0123456789 ()-.")
NUMBER_PATTERN = r"^[+0-9 ()\-.]{1,32}$"
"""What :func:`normalize` lets through to parsing, as a JSON Schema pattern."""
INTERNATIONAL_PATTERN = r"^\+[0-9 ()\-.]{1,31}$"
"""The same, in the international form required without a ``default_region``."""


def normalize(raw: str, *, default_region: str | None = None,
              allowed_regions: frozenset[str] | None = None) -> str:
    """Return ``raw`` as an E.164 string, or raise :class:`InvalidPhoneNumber` saying why.

    ``default_region`` (ISO 3166 alpha-2) lets national forms such as ``89161234567`` through;
    without it only international forms (``+7...``) are accepted. ``allowed_regions`` limits the
    countries a deployment serves (a number of another country is refused with its own message).
    """
    if not isinstance(raw, str):
        raise InvalidPhoneNumber("phone number must be a string")
    text = raw.strip()
    if not text:
        raise InvalidPhoneNumber("phone number is empty")
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidPhoneNumber("phone number is too long")
    if not set(text) <= _ALLOWED:
        raise InvalidPhoneNumber("phone number may contain only ASCII digits and a leading '+'")
    if "+" in text[1:]:
        raise InvalidPhoneNumber("'+' may stand only at the start of a phone number")
    if text[0] == "+" and text[1:].isdigit() and text.isascii():
        parsed = _canonical(text)
        if parsed is not None and (region := _valid_region(parsed)) is not None:
            return _served(text, region, allowed_regions)
    if not text.startswith("+") and default_region is None:
        raise InvalidPhoneNumber("phone number must be in E.164 form, e.g. +79161234567: "
                                 "without '+' and the country code its country is ambiguous")
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"phone number cannot be parsed: {exc._msg}") from exc
    region = _valid_region(parsed)
    if region is None:
        raise InvalidPhoneNumber("phone number is not a valid number of any numbering plan")
    return _served(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
                   region, allowed_regions)


def _canonical(text: str) -> phonenumbers.PhoneNumber | None:
    """The number of an input already written as ``+<country code><national number>``.

    Bulk imports are almost always canonical already; building the number directly skips the
    general parser (about four times faster). Anything unusual (national numbers with a
    leading zero, unknown country codes) returns None and takes the general path, and so
    does a number built here that is not valid: the parser may read its digits otherwise
    (some plans' national prefix for parsing: ``+67210660`` is Norfolk Island's
    ``+672310660``).
    """
    for size in (1, 2, 3):
        code = int(text[1 : 1 + size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = text[1 + size :]
            if not national or national[0] == "0":
                return None
            return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return None


def _valid_region(parsed: phonenumbers.PhoneNumber) -> str | None:
    """The region of a valid number; None for a number valid in no numbering plan."""
    # is_valid_number(n) is is_valid_number_for_region(n, region_code_for_number(n)); the
    # region is found once here and serves the check of the allowed regions too.
    region = _region_of(parsed)
    return region if region is not None and _is_valid_for_region(parsed, region) else None


def _region_of(parsed: phonenumbers.PhoneNumber) -> str | None:
    """``phonenumbers.region_code_for_number``, with its regions' leading digits compiled once.

    Of the regions sharing a country code (+7: Russia, Kazakhstan) the first whose leading
    digits the number has is its region, or, for a region without leading digits, the first
    in which it is valid.
    """
    regions = _regions_of_code(parsed.country_code)
    if len(regions) == 1:
        return regions[0][0]
    national = phonenumbers.national_significant_number(parsed)
    for region, leading in regions:
        if leading is not None:
            if leading.match(national):
                return region
        elif _is_valid_for_region(parsed, region):
            return region
    return None


@functools.cache
def _regions_of_code(country_code: int | None) -> tuple[tuple[str, re.Pattern[str] | None], ...]:
    """The regions of ``country_code`` in the library's order, with their leading digits."""
    if country_code is None:
        return ()
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if len(regions) == 1:
        return ((regions[0], None),)
    found = []
    for region in regions:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is not None:
            leading = metadata.leading_digits
            found.append((region, None if leading is None else re.compile(leading)))
    return tuple(found)


def _served(e164: str, region: str, allowed_regions: frozenset[str] | None) -> str:
    if allowed_regions is not None and region not in allowed_regions:
        raise InvalidPhoneNumber(f"phone numbers of region {region} are not served here",
                                 code="UNSUPPORTED_COUNTRY")
    return e164


def _is_valid_for_region(parsed: phonenumbers.PhoneNumber, region: str) -> bool:
    """``phonenumbers.is_valid_number_for_region``, answered first by its region's usual kind.

    The library tries a number against each kind of number in a fixed order (premium rate,
    toll free, ... fixed line, mobile) and calls it valid when one matches, so a registry of
    mobile numbers pays for up to nine failed patterns a number. The order only decides which
    kind is reported, never whether one is: a number matching the region's general and mobile
    descriptions is valid, and only the others need the library's full walk.
    """
    usual = _usual_kind(region)
    if usual is not None and parsed.country_code == usual.country_code:
        national = phonenumbers.national_significant_number(parsed)
        if usual.general.matches(national) and usual.kind.matches(national):
            return True
    return bool(phonenumbers.is_valid_number_for_region(parsed, region))


@dataclass(frozen=True)
class _Description:
    """A ``PhoneNumberDesc`` as the library matches it: the lengths first, then the pattern."""

    lengths: frozenset[int]
    pattern: re.Pattern[str]

    def matches(self, national: str) -> bool:
        return ((not self.lengths or len(national) in self.lengths)
                and self.pattern.fullmatch(national) is not None)


@dataclass(frozen=True)
class _UsualKind:
    country_code: int
    general: _Description
    kind: _Description


@functools.cache
def _usual_kind(region: str) -> _UsualKind | None:
    """The region's general description and its mobile one (its fixed-line one where the
    two share a pattern: the library then tests that one only); None where the library has
    no such descriptions (non-geographic entities)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    if metadata is None or metadata.country_code is None:
        return None
    kind = (metadata.fixed_line if metadata.same_mobile_and_fixed_line_pattern
            else metadata.mobile)
    descriptions = []
    for description in (metadata.general_desc, kind):
        if description is None or not description.national_number_pattern:
            return None
        descriptions.append(_Description(frozenset(description.possible_length),
                                         re.compile(description.national_number_pattern)))
    return _UsualKind(metadata.country_code, *descriptions)


def is_e164(value: str) -> bool:
    """True when ``value`` is already the canonical E.164 form of a valid number."""
    try:
        return normalize(value) == value
    except InvalidPhoneNumber:
        return False


def national_significant(e164: str) -> int:
    """The ten digits after ``+7`` as an integer: the key of Russian numbering data."""
    if not e164.startswith("+7") or len(e164) != 12:
        raise InvalidPhoneNumber(f"{e164} is not a Russian E.164 number")
    return int(e164[2:])
