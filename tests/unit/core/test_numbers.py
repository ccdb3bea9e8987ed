"""Number normalisation: E.164 out, clear refusals for anything else."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numident.core.numbers import is_e164, national_significant, normalize
from numident.errors import InvalidPhoneNumber
from numident.web.errors import http_status


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+79161234567", "+79161234567"),
        ("+7 916 123-45-67", "+79161234567"),
        ("+7 (916) 123 45 67", "+79161234567"),
        ("+447911123456", "+447911123456"),
    ],
)
def test_international_forms_become_e164(raw: str, expected: str) -> None:
    """Spaces, dashes and brackets of a written number are dropped; the number is kept."""
    assert normalize(raw) == expected


def test_national_form_needs_a_default_region() -> None:
    """A number without '+' is read in the given region, and refused without one."""
    assert normalize("89161234567", default_region="RU") == "+79161234567"
    with pytest.raises(InvalidPhoneNumber, match=r"E\.164"):
        normalize("89161234567")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("+7916abc4567", "ASCII digits"),
        ("+7916123456", "not a valid number"),
        ("+791612345678", "not a valid number"),
        ("+7٩١٦١٢٣٤٥٦٧", "ASCII digits"),
        ("+7９１６１２３４５６７", "ASCII digits"),
        ("79+161234567", "only at the start"),
        ("+" + "1" * 40, "too long"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(raw: str, reason: str) -> None:
    """Letters, wrong lengths, other scripts' digits and empty input are refused, saying why."""
    with pytest.raises(InvalidPhoneNumber, match=reason) as caught:
        normalize(raw)
    assert http_status(caught.value) == 400


def test_other_countries_are_refused_when_regions_are_limited() -> None:
    """A deployment for Russia refuses a valid British number with its own code."""
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize("+447911123456", allowed_regions=frozenset({"RU"}))
    assert caught.value.code == "UNSUPPORTED_COUNTRY"
    assert normalize("+79161234567", allowed_regions=frozenset({"RU"})) == "+79161234567"


def test_national_significant_number_is_the_ten_digits_after_plus_seven() -> None:
    """Routing data keys numbers by the ten digits after +7."""
    assert national_significant("+79161234567") == 9161234567
    with pytest.raises(InvalidPhoneNumber):
        national_significant("+447911123456")


@given(st.integers(min_value=900_000_0000, max_value=999_999_9999))
def test_normalize_agrees_with_libphonenumber(national: int) -> None:
    """The fast path for canonical input gives exactly libphonenumber's verdict."""
    raw = f"+7{national}"
    parsed = phonenumbers.parse(raw, None)
    if phonenumbers.is_valid_number(parsed):
        assert normalize(raw) == raw
        assert is_e164(raw)
    else:
        with pytest.raises(InvalidPhoneNumber):
            normalize(raw)


@given(st.text(max_size=40))
def test_normalize_either_returns_e164_or_raises_invalid_phone_number(raw: str) -> None:
    """Whatever the input, the result is canonical E.164 or a clean refusal, never a crash."""
    try:
        result = normalize(raw)
    except InvalidPhoneNumber:
        return
    assert result.startswith("+")
    assert result[1:].isdigit()
    assert normalize(result) == result


def _numbers_of_every_region() -> list[str]:
    """Each region's example number of each kind, and near misses of it (a digit more, a
    digit less, another leading digit), as E.164 text."""
    found = set()
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in vars(phonenumbers.PhoneNumberType).values():
            if not isinstance(kind, int):
                continue
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            text = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            code = str(example.country_code)
            national = text[1 + len(code):]
            found.update({text, f"{text}5", text[:-1],
                          *(f"+{code}{digit}{national[1:]}" for digit in "123456789")})
    return sorted(found)


def test_every_regions_numbers_get_libphonenumbers_verdict() -> None:
    """Whatever the kind of number (mobile, fixed line, toll free, ...) and the region, a
    number is accepted exactly when libphonenumber holds it valid, in the library's region
    and as the number the library reads (Norfolk Island's national prefix for parsing turns
    ``+67210660`` into ``+672310660``)."""
    numbers = _numbers_of_every_region()
    assert len(numbers) > 10_000
    assert normalize("+67210660") == "+672310660"
    for raw in numbers:
        parsed = phonenumbers.parse(raw, None)
        if phonenumbers.is_valid_number(parsed):
            region = frozenset({phonenumbers.region_code_for_number(parsed)})
            assert normalize(raw, allowed_regions=region) == phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.E164), raw
        else:
            with pytest.raises(InvalidPhoneNumber):
                normalize(raw)


def _libphonenumber_verdict(code: int, national: str, allowed: frozenset[str] | None) -> str:
    """What libphonenumber says of ``+<code><national>``, read by its parser: its E.164 form,
    or why not."""
    try:
        parsed = phonenumbers.parse(f"+{code}{national}", None)
    except phonenumbers.NumberParseException:
        return "not valid"
    region = phonenumbers.region_code_for_number(parsed)
    if region is None or not phonenumbers.is_valid_number_for_region(parsed, region):
        return "not valid"
    if allowed is not None and region not in allowed:
        return "not served"
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@given(st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
       st.from_regex(r"[1-9][0-9]{0,13}", fullmatch=True), st.integers(0, 2), st.data())
def test_canonical_numbers_of_every_country_get_libphonenumbers_verdict(
        code: int, national: str, limit: int, data: st.DataObject) -> None:
    """For any country code, any national number and any allowed regions (none, the main
    region, another of the code's), a canonical number is accepted or refused exactly as the
    general libphonenumber path decides."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]
    allowed = None if limit == 0 else frozenset(
        {regions[0] if limit == 1 else data.draw(st.sampled_from(regions))})
    raw = f"+{code}{national}"
    try:
        got = normalize(raw, allowed_regions=allowed)
    except InvalidPhoneNumber as exc:
        got = "not served" if exc.code == "UNSUPPORTED_COUNTRY" else "not valid"
    assert got == _libphonenumber_verdict(code, national, allowed)


@pytest.mark.parametrize("raw", ["+79161234567", "+77012345678", "+73012345678",
                                 "+12025550123", "+14165550123", "+447911123456"])
def test_numbers_of_codes_shared_by_regions_keep_their_region(raw: str) -> None:
    """+7 (Russia, Kazakhstan) and +1 (NANPA): a number valid in the main region is served
    there, and one of another region of the same code is refused when only the main region
    is allowed, as libphonenumber says."""
    parsed = phonenumbers.parse(raw)
    main = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[parsed.country_code][0]
    allowed = frozenset({main})
    try:
        got = normalize(raw, allowed_regions=allowed)
    except InvalidPhoneNumber as exc:
        got = "not served" if exc.code == "UNSUPPORTED_COUNTRY" else "not valid"
    assert got == _libphonenumber_verdict(parsed.country_code, str(parsed.national_number),
                                          allowed)
