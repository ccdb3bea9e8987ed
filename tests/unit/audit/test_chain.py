"""The chain's rules: canonical records, their links, and the walk that finds the first break."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from numident.audit.chain import GENESIS, Walk, canonical, digest, link, record, timestamp


def _chain(entries: list[dict[str, object]]) -> list[tuple[int, str, dict[str, object]]]:
    links, prev = [], GENESIS
    for seq, entry in enumerate(entries, start=1):
        prev = link(seq, prev, entry)
        links.append((seq, prev, entry))
    return links


ENTRIES: list[dict[str, object]] = [
    {"action": "request_received", "actor": "chat", "at": "2026-12-01T10:00:00.000000Z"},
    {"action": "answered", "actor": "chat", "detail": {"result": "confirmed"}},
    {"action": "usage_recorded", "actor": "chat", "phone_number": "+79161234567"},
    {"action": "event_recorded", "actor": "billing", "detail": None},
]


def test_a_record_is_rfc8785_json_sorted_and_without_spaces() -> None:
    """Keys are sorted, there is no whitespace, non-ASCII stays UTF-8, 1.0 is written 1."""
    line = record(7, GENESIS, {"z": 1.0, "a": "Ёж", "m": [True, None]})
    assert line == ('{"entry":{"a":"Ёж","m":[true,null],"z":1},"prev":"' + GENESIS
                    + '","seq":7}').encode()


# Any text, lone surrogates included, weighted towards what needs escaping or sorts apart in
# UTF-16 (controls, quotes, backslashes, characters past U+FFFF next to U+E000-U+FFFF).
_TEXT = st.text(st.one_of(st.characters(codec=None),
                          st.sampled_from('"\\\b\f\n\r\t\x00\x1f\x7f\u2028\ue000\uffff😀')))
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**60), 2**60),
                     st.floats(allow_nan=True, allow_infinity=True), _TEXT)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=5)), max_leaves=12)


def _outcome(encode: Any, value: Any) -> bytes | str:
    try:
        return encode(value)  # type: ignore[no-any-return]
    except ValueError:  # the library's refusals (a surrogate in a key: UnicodeEncodeError)
        return "refused"


@given(_VALUES)
def test_canonical_bytes_are_the_rfc8785_librarys(value: Any) -> None:
    """Byte for byte what the reference library writes, and refused where it refuses."""
    assert _outcome(canonical, value) == _outcome(rfc8785.dumps, value)


@given(st.integers(0, 2**53), st.text(), st.dictionaries(_TEXT, _VALUES, max_size=6))
def test_a_record_is_the_canonical_form_of_seq_prev_and_entry(seq: int, prev: str,
                                                               entry: dict[str, Any]) -> None:
    assert _outcome(lambda e: record(seq, prev, e), entry) == _outcome(
        rfc8785.dumps, {"seq": seq, "prev": prev, "entry": entry})


def test_members_are_in_the_utf16_order_of_rfc8785s_sorting_example() -> None:
    """RFC 8785 section 3.2.3: the emoji (a surrogate pair in UTF-16) sorts before U+FB33."""
    names = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Dalet", "1": "One",
             "\U0001f600": "Grinning Face", "\u0080": "Control", "\u00f6": "o Diaeresis"}
    order = json.loads(canonical(names), object_pairs_hook=lambda pairs: [k for k, _ in pairs])
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.parametrize("value", [{1: "x"}, {"a": "\ud800"}, "\udfff", 2**53, float("nan"),
                                   {"a": object()}])
def test_what_rfc8785_cannot_write_is_refused(value: Any) -> None:
    """Non-string keys, lone surrogates, integers past 2**53 - 1, NaN, other types."""
    with pytest.raises(rfc8785.CanonicalizationError):
        canonical(value)


def test_a_hash_is_the_sha256_of_the_record_line() -> None:
    """H(n) is what `sha256sum` prints for the record's bytes."""
    entry = {"action": "answered"}
    assert link(1, GENESIS, entry) == hashlib.sha256(record(1, GENESIS, entry)).hexdigest()
    assert digest(b"abc") == ("ba7816bf8f01cfea414140de5dae2223"
                              "b00361a396177a9cb410ff61f20015ad")  # FIPS 180-2 vector


def test_a_record_reads_back_as_the_same_json() -> None:
    """The line is ordinary JSON: any parser reads seq, prev and entry from it."""
    assert json.loads(record(3, "ab" * 32, {"k": "v"})) == {
        "seq": 3, "prev": "ab" * 32, "entry": {"k": "v"}}


def test_timestamps_have_one_text_per_instant() -> None:
    """Whatever the offset it was read with, an instant is written in UTC with microseconds."""
    moment = datetime(2026, 12, 1, 13, 0, 0, 5, tzinfo=timezone(timedelta(hours=3)))
    assert timestamp(moment) == "2026-12-01T10:00:00.000005Z"
    assert timestamp(moment.astimezone(UTC)) == timestamp(moment)


def test_an_intact_chain_walks_to_its_end() -> None:
    walk = Walk()
    assert [walk.step(seq, h, e) for seq, h, e in _chain(ENTRIES)] == [None] * 4
    assert (walk.seq, walk.head) == (4, _chain(ENTRIES)[-1][1])
    assert walk.line == record(4, _chain(ENTRIES)[2][1], ENTRIES[3])


def _first_break(links: list[tuple[int, str, dict[str, object]]]):  # type: ignore[no-untyped-def]
    walk = Walk()
    for seq, stored, entry in links:
        problem = walk.step(seq, stored, entry)
        if problem is not None:
            return problem
    return None


def test_a_changed_entry_is_named() -> None:
    links = _chain(ENTRIES)
    links[1] = (2, links[1][1], {**ENTRIES[1], "detail": {"result": "not_found"}})
    problem = _first_break(links)
    assert (problem.seq, problem.kind) == (2, "changed")


def test_a_removed_entry_is_named() -> None:
    links = _chain(ENTRIES)
    del links[2]
    problem = _first_break(links)
    assert (problem.seq, problem.kind) == (3, "removed")
    assert "entry 3 is missing (the next is 4)" in problem.message


def test_an_entry_inserted_under_a_taken_number_is_named() -> None:
    links = _chain(ENTRIES)
    links.insert(2, (2, links[1][1], {"action": "answered", "actor": "intruder"}))
    problem = _first_break(links)
    assert (problem.seq, problem.kind) == (2, "inserted")


def test_an_entry_inserted_and_the_rest_renumbered_breaks_at_the_insertion() -> None:
    """Renumbering keeps seq consecutive, but the inserted content does not match H(2)."""
    links = _chain(ENTRIES)
    forged = [(1, *links[0][1:]), (2, links[1][1], {"action": "forged"})] + [
        (seq + 1, h, e) for seq, h, e in links[1:]]
    problem = _first_break(forged)
    assert (problem.seq, problem.kind) == (2, "changed")


def test_swapped_entries_are_found_at_the_first_of_them() -> None:
    links = _chain(ENTRIES)
    swapped = [links[0], (2, links[2][1], links[2][2]), (3, links[1][1], links[1][2]), links[3]]
    problem = _first_break(swapped)
    assert (problem.seq, problem.kind) == (2, "changed")


def test_a_rehashed_chain_does_not_match_its_checkpoint() -> None:
    """Whoever recomputes every hash after an edit keeps the links consistent; the signed
    head of before the edit tells."""
    signed = _chain(ENTRIES)[-1][1]
    rehashed = _chain([ENTRIES[0], {"action": "forged"}, *ENTRIES[2:]])
    walk = Walk()
    assert all(walk.step(*link_) is None for link_ in rehashed)
    problem = walk.checkpoint(4, signed, "checkpoint 4")
    assert problem is not None
    assert (problem.seq, problem.kind) == (4, "checkpoint")
    assert Walk(seq=4, head=signed).checkpoint(4, signed, "checkpoint 4") is None


def test_a_checkpoint_past_the_end_names_the_first_missing_entry() -> None:
    walk = Walk()
    for link_ in _chain(ENTRIES)[:2]:
        walk.step(*link_)
    problem = walk.checkpoint(4, "0" * 64, "checkpoint 4")
    assert problem is not None
    assert (problem.seq, problem.kind) == (3, "removed")
