"""Subscriber numbers: parsed once at the boundary, stored and compared only in E.164.

Parsing uses Google's libphonenumber rules (``phonenumbers``), never regular expressions.
Only ASCII input is accepted: a number written with other scripts' digits is refused rather
than silently folded, so that what is stored is exactly what the caller meant.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

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
        if parsed is not None:
            if _valid_in_main_region(parsed, allowed_regions):
                return text
            return _checked(parsed, text, allowed_regions)
    if not text.startswith("+") and default_region is None:
        raise InvalidPhoneNumber("phone number must be in E.164 form, e.g. +79161234567: "
                                 "without '+' and the country code its country is ambiguous")
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"phone number cannot be parsed: {exc._msg}") from exc
    return _checked(parsed, None, allowed_regions)


def _canonical(text: str) -> phonenumbers.PhoneNumber | None:
    """The number of an input already written as ``+<country code><national number>``.

    Bulk imports are almost always canonical already; building the number directly skips the
    general parser (about four times faster) and gives the same answer. Anything unusual
    (national numbers with a leading zero, unknown country codes) returns None and takes the
    general path.
    """
    for size in (1, 2, 3):
        code = int(text[1 : 1 + size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = text[1 + size :]
            if not national or national[0] == "0":
                return None
            return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return None


def _valid_in_main_region(parsed: phonenumbers.PhoneNumber,
                          allowed_regions: frozenset[str] | None) -> bool:
    """True when ``_checked`` would pass ``parsed`` (canonical, its national number without a
    leading zero) as a number of its country code's main region, found with fewer checks.

    ``region_code_for_number`` looks at the main region first (it is listed first): the region
    is the number's when it is its code's only one, when the number starts with the region's
    leading digits, or, for a region without any, when the number is valid there; ``_checked``
    then asks that it be valid there and allowed. False says only that the general path must
    decide (and name what is wrong).
    """
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(parsed.country_code or 0, ())
    if not regions or (allowed_regions is not None and regions[0] not in allowed_regions):
        return False
    region = _region_rules(regions[0])
    if region is None:
        return False
    leading, valid = region
    national = str(parsed.national_number)
    return valid(national) and (len(regions) == 1 or leading is None
                                or leading.match(national) is not None)


@functools.cache
def _region_rules(region: str
                  ) -> tuple[re.Pattern[str] | None, Callable[[str], bool]] | None:
    """``region``'s leading digits, and ``is_valid_number_for_region`` of a national number of
    ``region`` in two matches; None for a region without metadata.

    libphonenumber finds a number's type by matching it against each type's description in
    turn (a length check, then the pattern), after the general description; any type but
    UNKNOWN is valid. The same descriptions are joined here into one alternation for each
    national number length: the same answer, with two matches instead of up to eleven.
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None
    types = [metadata.premium_rate, metadata.toll_free, metadata.shared_cost, metadata.voip,
             metadata.personal_number, metadata.pager, metadata.uan, metadata.voicemail,
             metadata.fixed_line]
    if not metadata.same_mobile_and_fixed_line_pattern:
        types.append(metadata.mobile)

    def pattern(desc: Any, length: int) -> str | None:
        if desc is None or not desc.national_number_pattern:
            return None
        if desc.possible_length and length not in desc.possible_length:
            return None
        return f"(?:{desc.national_number_pattern})"

    by_length: dict[int, tuple[re.Pattern[str], re.Pattern[str]]] = {}
    for length in range(1, MAX_INPUT_LENGTH + 1):
        general = pattern(metadata.general_desc, length)
        alternatives = [p for p in (pattern(desc, length) for desc in types) if p]
        if general and alternatives:
            by_length[length] = (re.compile(general), re.compile("|".join(alternatives)))

    def valid(national: str) -> bool:
        patterns = by_length.get(len(national))
        return (patterns is not None and patterns[0].fullmatch(national) is not None
                and patterns[1].fullmatch(national) is not None)

    leading = None if metadata.leading_digits is None else re.compile(metadata.leading_digits)
    return leading, valid


def _checked(parsed: phonenumbers.PhoneNumber, canonical: str | None,
             allowed_regions: frozenset[str] | None) -> str:
    # is_valid_number(n) is is_valid_number_for_region(n, region_code_for_number(n)); the
    # region is found once here and serves the check of the allowed regions too.
    region = phonenumbers.region_code_for_number(parsed)
    if region is None or not phonenumbers.is_valid_number_for_region(parsed, region):
        raise InvalidPhoneNumber("phone number is not a valid number of any numbering plan")
    if allowed_regions is not None and region not in allowed_regions:
        raise InvalidPhoneNumber(
            f"phone numbers of region {region or 'unknown'} are not served here",
            code="UNSUPPORTED_COUNTRY",
        )
    return canonical or phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


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
