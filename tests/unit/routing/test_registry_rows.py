"""Reading registry text defensively: lines, line numbers and problems across read blocks."""

from __future__ import annotations

from pathlib import Path

from numident.routing.files import MAX_LINE_BYTES, Problems, RegistryRows


def rows_of(tmp_path: Path, data: bytes) -> tuple[list[tuple[int, list[str]]], Problems]:
    path = tmp_path / "file.csv"
    path.write_bytes(data)
    problems = Problems(path)
    return list(RegistryRows(path, ";", problems)), problems


def test_crlf_lines_across_megabyte_blocks_keep_their_numbers(tmp_path: Path) -> None:
    """Rows split over the reader's 1 MB blocks come out whole, numbered by line."""
    body = "".join(f"{n};Оператор {n}\r\n" for n in range(100_000))
    rows, problems = rows_of(tmp_path, ("a;b\r\n" + body).encode())
    assert problems.total == 0
    assert len(rows) == 100_001
    assert rows[77_778] == (77_779, ["77777", "Оператор 77777"])


def test_an_endless_line_is_one_problem_and_reading_goes_on(tmp_path: Path) -> None:
    """A 3 MB line without a break is named once; the lines after it are still read."""
    data = b"a;b\n1;" + b"x" * 3_000_000 + b"\n2;ok\n"
    rows, problems = rows_of(tmp_path, data)
    assert [(p.line, p.field) for p in problems.items] == [(2, "b")]
    assert str(MAX_LINE_BYTES) in problems.items[0].message
    assert rows[-1] == (3, ["2", "ok"])


def test_a_control_character_deep_in_a_big_file_is_named(tmp_path: Path) -> None:
    """Only the line with the NUL is a problem; its neighbours in the block are fine."""
    lines = [f"{n};name\n" for n in range(200_000)]
    lines[150_000] = "150000;na\x00me\n"
    rows, problems = rows_of(tmp_path, ("a;b\n" + "".join(lines)).encode())
    assert [(p.line, p.field) for p in problems.items] == [(150_002, "b")]
    assert len([row for _, row in rows if row]) == 200_000


def test_a_quote_left_open_is_named_where_it_opened(tmp_path: Path) -> None:
    """An unclosed quote swallows the lines after it; the problem is on the line it began."""
    data = 'a;b\n1;"open\n' + "".join(f"{n};x\n" for n in range(2, 500))
    rows, problems = rows_of(tmp_path, data.encode())
    assert [(p.line, p.field) for p in problems.items] == [(2, "b")]
    assert "not closed before line 500" in problems.items[0].message
    assert rows == [(1, ["a", "b"])]


def test_a_quoted_field_past_the_csv_limit_is_a_problem_not_an_exception(
        tmp_path: Path) -> None:
    """Lines glued by an open quote beyond 128 KB end the reading with one problem."""
    data = 'a;b\n1;"open\n' + "".join(f"{n};{'x' * 60}\n" for n in range(2, 5000))
    _, problems = rows_of(tmp_path, data.encode())
    assert [(p.line, p.field) for p in problems.items] == [(2, "(row)")]
    assert "field larger than field limit" in problems.items[0].message
