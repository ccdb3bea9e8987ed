"""Reading portability files: the national export and the plain CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from numident.errors import InvalidFile
from numident.routing.ports import NO_TIME, kind_of, read_ports

ALIASES = {"inn:7740000076": "7740000076", "inn:7713076301": "7713076301",
           "owner:mMTS": "7740000076", "owner:mBEE": "7713076301", "mnc:99": "7713076301"}
NATIONAL = "Number,OwnerId,MNC,Route,RegionCode,PortDate,RowCount\n"


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_national_export_in_windows_1251_is_read(tmp_path: Path) -> None:
    """Ten-digit numbers, owners by OwnerId (or MNC), port times as UTC seconds."""
    path = write(tmp_path, "Port_All_20261101.csv", NATIONAL +
                 "9161234567,mBEE,99,D2599,77,2026-11-01T10:00:00,2\n"
                 "9031112233,,99,D2599,77,2026-11-01 11:00:00,\n", "cp1251")
    rows = read_ports(path, ALIASES.get)
    assert rows.numbers.tolist() == [9161234567, 9031112233]
    assert [rows.inns[i] for i in rows.operators] == ["7713076301", "7713076301"]
    assert rows.ported_at.tolist() == [1793527200, 1793530800]


def test_plain_csv_takes_any_alias_and_number_form(tmp_path: Path) -> None:
    """E.164, 11 or 10 digits; the operator by ИНН, OwnerId or MNC; time optional."""
    path = write(tmp_path, "ports.csv", "number,operator,ported_at\n"
                 "+79161234567,7740000076,2025-01-01T00:00:00Z\n"
                 "89161234568,mBEE,\n"
                 "9161234569,99,2025-01-01\n")
    rows = read_ports(path, ALIASES.get)
    assert rows.numbers.tolist() == [9161234567, 9161234568, 9161234569]
    assert [rows.inns[i] for i in rows.operators] == ["7740000076", "7713076301", "7713076301"]
    assert rows.ported_at[1] == NO_TIME


@pytest.mark.parametrize(("line", "field", "words"), [
    ("916123456,mBEE,99,D,77,2026-11-01T10:00:00,", "Number", "ten digits"),
    ("9161234567,mNOPE,00,D,77,2026-11-01T10:00:00,", "OwnerId", "not in the operator"),
    ("9161234567,mBEE,99,D,77,yesterday,", "PortDate", "date and time"),
    ("7012345678,mBEE,99,D,77,2026-11-01T10:00:00,", "Number", "a number of KZ"),
    ("9161234567,mBEE,99,D,77,2099-11-01T10:00:00,", "PortDate", "in the future"),
    ("9161234567,mBEE,99,D,77,1800-11-01T10:00:00,", "PortDate", "before number portability"),
    ("9161234567,mBEE,99,D,77,2026-11-01T10:00:00,5", "RowCount", "contradicts the count 2"),
])
def test_bad_national_rows_are_named(tmp_path: Path, line: str, field: str, words: str) -> None:
    """A bad row names its line and field; nothing of the file is returned."""
    path = write(tmp_path, "Port_Increment_1.csv",
                 NATIONAL + "9031112233,mMTS,01,D,77,2026-11-01T10:00:00,2\n" + line + "\n")
    with pytest.raises(InvalidFile) as caught:
        read_ports(path, ALIASES.get)
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (3, field)
    assert words in problem.message


def test_a_number_given_twice_is_refused(tmp_path: Path) -> None:
    """The same number twice in one file is ambiguous and refused."""
    path = write(tmp_path, "ports.csv", "number,operator,ported_at\n"
                 "+79161234567,7740000076,\n+79031112233,7740000076,\n+79161234567,mBEE,\n")
    with pytest.raises(InvalidFile) as caught:
        read_ports(path, ALIASES.get)
    assert [(p.line, p.field) for p in caught.value.problems] == [(4, "number")]
    assert "also on line 2" in caught.value.problems[0].message


def test_foreign_numbers_are_refused(tmp_path: Path) -> None:
    """Only Russian numbers can be in the Russian portability data."""
    path = write(tmp_path, "ports.csv", "number,operator,ported_at\n+447911123456,mBEE,\n")
    with pytest.raises(InvalidFile, match="not a Russian number"):
        read_ports(path, ALIASES.get)


def test_kind_follows_the_file_name_unless_given() -> None:
    """Port_Increment files are increments; anything else is a full snapshot."""
    assert kind_of(Path("Port_Increment_2026110110.csv"), None) == "increment"
    assert kind_of(Path("Port_All_20261101.csv"), None) == "full"
    assert kind_of(Path("ports.csv"), None) == "full"
    assert kind_of(Path("ports.csv"), "increment") == "increment"


def test_a_truncated_national_export_is_refused_by_its_row_count(tmp_path: Path) -> None:
    """RowCount on the first row says how many rows follow; a cut file holds fewer."""
    path = write(tmp_path, "Port_All_1.csv", NATIONAL +
                 "9161234567,mBEE,99,D,77,2026-11-01T10:00:00,3\n"
                 "9161234568,mBEE,99,D,77,2026-11-01T10:00:00,\n", "cp1251")
    with pytest.raises(InvalidFile) as caught:
        read_ports(path, ALIASES.get)
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (2, "RowCount")
    assert "declares 3 row(s) but holds 2" in problem.message


def test_the_block_shortcut_agrees_with_phonenumbers_number_by_number() -> None:
    """A number's country is its block's, and phonenumbers' own for the numbers it knows."""
    import random

    import phonenumbers

    from numident.routing.ports import BLOCK, _region

    rng = random.Random(10)
    for _ in range(3000):
        number = rng.randrange(3_000_000_000, 10_000_000_000)
        assert _region(number) == _region(number // BLOCK * BLOCK), number
        parsed = phonenumbers.PhoneNumber(country_code=7, national_number=number)
        if phonenumbers.is_valid_number(parsed):
            assert _region(number) == phonenumbers.region_code_for_number(parsed), number
    assert _region(7012345678) == "KZ"
    assert _region(7912345678) == "KZ"  # not a valid number, but in Kazakhstan's space


def test_every_block_of_the_real_plan_is_russian(real_plan: Path) -> None:
    """Blocks the registry allocated before phonenumbers knew them are still Russian."""
    from numident.routing.plan import read_plan
    from numident.routing.ports import BLOCK, _region

    ranges = read_plan(real_plan).ranges
    blocks = {b for r in ranges for b in range(r.start // BLOCK, r.end // BLOCK + 1)}
    assert len(blocks) > 69_000
    assert {b for b in blocks if _region(b * BLOCK) != "RU"} == set()
