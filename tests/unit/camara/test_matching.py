"""KYC Match comparison: normal forms, verdicts, Jaro-Winkler scores, and what is kept as text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from rapidfuzz.distance import JaroWinkler

from numident.camara.holders import KEYED
from numident.camara.kyc_match import FIELDS, Clear, Keyed
from numident.camara.matching import Outcome, Verdict, Way, compare, joined, normal_text


@pytest.mark.parametrize(("given", "stored"), [
    ("José  Pérez-García", "jose perez garcia"),
    ("ÉMILIE d'Arc", "Emilie D Arc"),
    ("Ｆｅｄｅｒｉｃａ", "federica"),
    ("ﾌｪﾃﾞﾘｶ", "フェデリカ"),
])
def test_text_matches_across_case_accents_punctuation_and_width(given: str, stored: str
                                                                 ) -> None:
    """Spellings that differ only in case, accents, punctuation or width are the same."""
    assert compare(Way.TEXT, given, [stored]) == Outcome(Verdict.TRUE)


def test_kana_voicing_marks_are_not_dropped_as_accents() -> None:
    """デ and テ are different kana, unlike é and e."""
    assert normal_text("デ") != normal_text("テ")
    assert compare(Way.TEXT, "フェデリカ", ["フェテリカ"]).verdict is Verdict.FALSE


def test_a_near_miss_is_false_with_the_jaro_winkler_percentage() -> None:
    outcome = compare(Way.TEXT, "Clara", ["Carla"])
    assert outcome.verdict is Verdict.FALSE
    assert outcome.score == int(JaroWinkler.normalized_similarity("clara", "carla") * 100)
    assert 0 <= outcome.score <= 99


def test_a_score_never_reaches_100_when_values_differ() -> None:
    """A long value differing in one trailing character would round to 100; it stays 99."""
    long = "a" * 200
    assert compare(Way.TEXT, long, [long + "b"]).score == 99


def test_the_best_of_several_joined_forms_answers() -> None:
    outcome = compare(Way.TEXT, "Sanchez Arjona Federica",
                      ["Federica Sanchez Arjona", "Sanchez Arjona Federica"])
    assert outcome == Outcome(Verdict.TRUE)


def test_identifiers_compare_exactly_without_score() -> None:
    assert compare(Way.IDENTIFIER, "66666666q", ["66666666-Q"]) == Outcome(Verdict.TRUE)
    assert compare(Way.IDENTIFIER, "66666666R", ["66666666Q"]) == Outcome(Verdict.FALSE)
    assert compare(Way.IDENTIFIER, "28 004", ["28004"]) == Outcome(Verdict.TRUE)


def test_email_is_scored_and_case_insensitive() -> None:
    assert compare(Way.EMAIL, "Abc@Example.com", ["abc@example.com"]).verdict is Verdict.TRUE
    wrong = compare(Way.EMAIL, "abd@example.com", ["abc@example.com"])
    assert wrong.verdict is Verdict.FALSE
    assert wrong.score is not None
    assert wrong.score > 80


def test_nothing_stored_is_not_available() -> None:
    assert compare(Way.TEXT, "Federica", []) == Outcome(Verdict.NOT_AVAILABLE)
    assert compare(Way.CODE, "ES", ["  "]) == Outcome(Verdict.NOT_AVAILABLE)


def test_codes_and_dates_compare_exactly() -> None:
    assert compare(Way.CODE, "es", ["ES"]).verdict is Verdict.TRUE
    assert compare(Way.DATE, "1978-08-22", ["1978-08-23"]) == Outcome(Verdict.FALSE)


def test_joined_needs_every_part() -> None:
    assert joined("Federica", "Sanchez") == "Federica Sanchez"
    assert joined("Federica", None) is None
    assert joined("Federica", " ") is None


def kyc_match_spec() -> dict[str, Any]:
    """The published KYC Match definition (``shared/camara`` or ``NUMIDENT_CAMARA_DIR``)."""
    default = Path(__file__).resolve().parents[4] / "shared" / "camara"
    folder = Path(os.environ.get("NUMIDENT_CAMARA_DIR", default))
    path = folder / "KnowYourCustomerMatch" / "kyc-match.yaml"
    assert path.is_file(), f"{path} is missing (set NUMIDENT_CAMARA_DIR)"
    spec: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return spec


def test_what_the_api_scores_is_kept_as_text_and_the_rest_as_digests() -> None:
    """The scored ways are the response's ...MatchScore properties; all else is a digest but
    the house number extension, a part of the scored address."""
    response = kyc_match_spec()["components"]["schemas"]["KYC_MatchResponse"]["properties"]
    scored = {name.removesuffix("MatchScore") for name in response if name.endswith("MatchScore")}
    assert {name for name, rule in FIELDS.items() if rule.way.scored} == scored
    assert all(isinstance(FIELDS[name], Clear) for name in scored)
    assert {rule.column for rule in FIELDS.values() if isinstance(rule, Keyed)} == set(KEYED)
    assert not any(way.scored for way in KEYED.values())
    assert {name for name, rule in FIELDS.items() if isinstance(rule, Clear)} - scored == \
        {"houseNumberExtension"}
