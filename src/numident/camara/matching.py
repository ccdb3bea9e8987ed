"""How KYC Match compares a given attribute with the holder's: verdicts and scores.

Pure rules, no I/O. Each attribute is compared in one of a few ways (:class:`Way`) after the
same normalisation on both sides:

* ``TEXT`` (names, address parts, places): Unicode compatibility forms folded (full- and
  half-width alike), case folded, accents and other diacritics dropped (kana voicing marks
  kept), punctuation read as a space, runs of spaces collapsed. Scored.
* ``EMAIL``: trimmed and case folded as a whole. Scored.
* ``IDENTIFIER`` (id document, postal code, bank account): upper case, only letters and
  digits. ``CODE`` (country, gender, document type): upper case. ``DATE``: the calendar date.

Equal normal forms are ``true``; otherwise ``false``, with a score for scored ways: the
Jaro-Winkler similarity of the normal forms (as the KYC Match API names it) in percent, rounded
down, so never 100. A composite stored as parts (a full name from given, middle and family
names; an address from street name, number and extension) is compared with each usual way
of joining them and the best one answers. Nothing stored is ``not_available``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum

from rapidfuzz.distance import JaroWinkler

KANA_MARKS = frozenset("\u3099\u309a")
_NON_WORD = re.compile(r"[\W_]+")


class Way(Enum):
    TEXT = "text"
    EMAIL = "email"
    IDENTIFIER = "identifier"
    CODE = "code"
    DATE = "date"

    @property
    def scored(self) -> bool:
        return self in (Way.TEXT, Way.EMAIL)


class Verdict(StrEnum):
    TRUE = "true"
    FALSE = "false"
    NOT_AVAILABLE = "not_available"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    score: int | None = None


NOT_AVAILABLE = Outcome(Verdict.NOT_AVAILABLE)


def normal_text(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    kept = "".join(ch for ch in decomposed
                   if not unicodedata.combining(ch) or ch in KANA_MARKS)
    folded = unicodedata.normalize("NFKC", kept).casefold()
    return " ".join(_NON_WORD.sub(" ", folded).split())


def normal_form(way: Way, value: str) -> str:
    if way is Way.TEXT:
        return normal_text(value)
    if way is Way.EMAIL:
        return value.strip().casefold()
    if way is Way.IDENTIFIER:
        return _NON_WORD.sub("", unicodedata.normalize("NFKC", value)).upper()
    return value.strip().upper()


def score(given: str, stored: str) -> int:
    """Similarity of two normal forms in percent (0-100)."""
    return int(JaroWinkler.normalized_similarity(given, stored) * 100)


def compare(way: Way, given: str, candidates: Iterable[str]) -> Outcome:
    """The verdict on ``given`` against the stored value, or the best of its joined forms."""
    mine = normal_form(way, given)
    theirs = [normal_form(way, c) for c in candidates]
    theirs = [t for t in theirs if t]
    if not theirs:
        return NOT_AVAILABLE
    if mine in theirs:
        return Outcome(Verdict.TRUE)
    if not way.scored:
        return Outcome(Verdict.FALSE)
    return Outcome(Verdict.FALSE, min(99, max(score(mine, t) for t in theirs)))


def joined(*parts: str | None) -> str | None:
    """The parts joined by spaces; None unless every part is known."""
    if any(p is None or not p.strip() for p in parts):
        return None
    return " ".join(p for p in parts if p is not None)
