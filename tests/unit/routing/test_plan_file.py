"""Reading the national numbering plan file as the registry publishes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from numident.errors import InvalidFile
from numident.routing.plan import read_plan

HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n"


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "plan.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_the_real_2026_registry_file_loads_whole(real_plan: Path) -> None:
    """Every range of the published file loads, with one name per ИНН."""
    plan = read_plan(real_plan)
    data_lines = len(real_plan.read_text(encoding="utf-8-sig").splitlines()) - 1
    assert len(plan.ranges) == data_lines == 16_629
    first = plan.ranges[0]
    assert (first.start, first.end, first.inn, first.region) == (
        9000000000, 9000061999, "7743895280", "Краснодарский край")
    # The file spells T2's name both 'ООО "Т2 МОБАЙЛ"' and 'ООО "Т2 Мобайл"'; one is kept.
    assert plan.names["7743895280"] in {'ООО "Т2 МОБАЙЛ"', 'ООО "Т2 Мобайл"'}
    assert all(a.end < b.start for a, b in zip(plan.ranges, plan.ranges[1:], strict=False))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1251"])
def test_encodings_of_the_registry_are_detected(tmp_path: Path, encoding: str) -> None:
    """UTF-8 with or without BOM and Windows-1251 files read the same."""
    path = write(tmp_path, HEADER + '916;0000000;0999999;1000000;ПАО "МТС";г. Москва;Москва;'
                 "7740000076\n", encoding)
    plan = read_plan(path)
    assert plan.names == {"7740000076": 'ПАО "МТС"'}
    assert plan.ranges[0].region == "г. Москва"


def test_columns_are_found_by_name_and_extra_columns_are_ignored(tmp_path: Path) -> None:
    """Reordered and additional columns do not matter."""
    path = write(tmp_path, "ИНН;Примечание;Регион;Оператор;Емкость;До;От;АВС/ DEF\n"
                 "7740000076;x;Москва;МТС;10;0000009;0000000;916\n")
    [only] = read_plan(path).ranges
    assert (only.start, only.end, only.inn) == (9160000000, 9160000009, "7740000076")


@pytest.mark.parametrize(("row", "field", "words"), [
    ("91;0000000;0000009;10;МТС;М;М;7740000076", "АВС/ DEF", "3 digits"),
    ("916;00000a0;0000009;10;МТС;М;М;7740000076", "От", "7 digits"),
    ("916;0000009;0000000;10;МТС;М;М;7740000076", "До", "before"),
    ("916;0000000;0000009;11;МТС;М;М;7740000076", "Емкость", "size"),
    ("916;0000000;0000009;10;МТС;М;М;77400", "ИНН", "ИНН"),
    ("916;0000000;0000009;10;;М;М;7740000076", "Оператор", "empty"),
    ("916;0000000", "(row)", "fields"),
])
def test_bad_rows_are_named_by_line_and_field(tmp_path: Path, row: str, field: str,
                                              words: str) -> None:
    """Each kind of bad row is reported with its line and column, and the file is refused."""
    good = "917;0000000;0000009;10;Билайн;М;М;7713076301\n"
    with pytest.raises(InvalidFile) as caught:
        read_plan(write(tmp_path, HEADER + good + row + "\n"))
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (3, field)
    assert words in problem.message


def test_overlapping_ranges_are_refused(tmp_path: Path) -> None:
    """Two operators cannot hold the same number."""
    with pytest.raises(InvalidFile) as caught:
        read_plan(write(tmp_path, HEADER + "916;0000000;0000099;100;А;М;М;7740000076\n"
                        "916;0000050;0000149;100;Б;М;М;7713076301\n"))
    assert "overlaps the range of line 2" in caught.value.problems[0].message


def test_missing_columns_are_named(tmp_path: Path) -> None:
    """A header without a required column is refused before any row is read."""
    with pytest.raises(InvalidFile) as caught:
        read_plan(write(tmp_path, "АВС/ DEF;От;До\n916;0000000;0000009\n"))
    assert {p.field for p in caught.value.problems} == {"Емкость", "Оператор", "Регион", "ИНН"}


def test_a_last_line_cut_inside_a_twelve_digit_inn_is_refused(tmp_path: Path) -> None:
    """A file cut off after ten digits of a 12-digit ИНН fails the ИНН check digits."""
    whole = "916;0000000;0000009;10;ИП Иванов;М;М;500100732259"
    cut = whole[:-2]
    read_plan(write(tmp_path, HEADER + whole + "\n"))
    with pytest.raises(InvalidFile) as caught:
        read_plan(write(tmp_path, HEADER + cut))
    assert [(p.line, p.field) for p in caught.value.problems] == [(2, "ИНН")]
    assert "check digits" in caught.value.problems[0].message


def test_a_header_only_plan_is_refused_as_empty(tmp_path: Path) -> None:
    """A plan without a single range would empty the routing: it is refused."""
    with pytest.raises(InvalidFile, match="holds no rows"):
        read_plan(write(tmp_path, HEADER))


@pytest.mark.parametrize(("data", "field", "words"), [
    (b"\x00" * 50 + b"\n", "(file)", "binary"),
    ("\ufeff".encode("utf-16-le") + HEADER.encode("utf-16-le"), "(file)", "UTF-16"),
    (HEADER.encode() + "916;0000000;0000009;10;ПАО \"МТС\";Моск\rва;М;7740000076\n".encode(),
     "Регион", "U+000D"),
])
def test_files_that_are_not_registry_text_are_named(tmp_path: Path, data: bytes, field: str,
                                                    words: str) -> None:
    """Binary data, UTF-16 and control characters are problems with a line and a field."""
    with pytest.raises(InvalidFile) as caught:
        read_plan(write_bytes(tmp_path, data))
    assert caught.value.problems[0].field == field
    assert words in caught.value.problems[0].message


def write_bytes(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "plan.csv"
    path.write_bytes(data)
    return path
