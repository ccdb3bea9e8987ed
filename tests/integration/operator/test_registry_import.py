"""The billing export import: idempotent, all-or-nothing by default, delta events notify."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from operator_harness import SUBSCRIBERS, Harness, HarnessFactory
from sqlalchemy import func, select

from numident.core.identification import ContractStatus
from numident.errors import FileProblem, InvalidFile
from numident.operator import export_file
from numident.operator.tables import outbox, subscriber_history, subscribers

pytestmark = pytest.mark.anyio
HEADER = "phone_number,contract_id,status,activated_at\n"


def registry(h: Harness) -> dict[str, tuple[str, str]]:
    with h.gateway.engine.connect() as conn:
        rows = conn.execute(select(subscribers))
        return {r.phone_number: (r.contract_id, r.status) for r in rows}


def history_count(h: Harness) -> int:
    with h.gateway.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(subscriber_history)).scalar_one())


async def test_import_loads_rows_in_e164_and_is_idempotent(make_gateway: HarnessFactory) -> None:
    """A second import of the same file changes nothing and adds no history."""
    h: Harness = await make_gateway()
    first = h.import_csv(SUBSCRIBERS)
    second = h.import_csv(SUBSCRIBERS)
    assert (first.inserted, first.updated, first.unchanged) == (4, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 4)
    assert registry(h)["+79161234568"] == ("C-2", "suspended")
    assert history_count(h) == 4


async def test_numbers_in_national_or_spaced_form_are_refused_with_line_and_field(
        make_gateway: HarnessFactory) -> None:
    """Bad rows name their line and field, and the whole file is rejected."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    bad = (HEADER + "+79161110000,C-10,active,2020-01-01\n"
           "+7916abc0000,C-11,active,2020-01-01\n"
           "+79161110002,,active,2020-01-01\n"
           "+79161110003,C-13,sleeping,2020-01-01\n"
           "+79161110004,C-14,active,yesterday\n"
           "+79161110000,C-15,active,2020-01-01\n")
    with pytest.raises(InvalidFile) as caught:
        h.import_csv(bad)
    problems = [(p.line, p.field) for p in caught.value.problems]
    assert problems == [(3, "phone_number"), (4, "contract_id"), (5, "status"),
                        (6, "activated_at"), (7, "phone_number")]
    assert "already given on line 2" in caught.value.problems[-1].message
    assert "+79161110000" not in registry(h)
    assert len(registry(h)) == 4


async def test_partial_import_loads_good_rows_and_writes_rejects(make_gateway: HarnessFactory
                                                                 ) -> None:
    """With the partial flag, good rows load and bad ones go to the reject file with reasons."""
    h: Harness = await make_gateway()
    rejects = h.home / "rejects.csv"
    report = h.import_csv(HEADER + "+79161110000,C-10,active,2020-01-01\n"
                          "+7000,C-11,active,2020-01-01\n", partial=True, reject_file=rejects)
    assert (report.inserted, report.rejected) == (1, 1)
    lines = rejects.read_text(encoding="utf-8").splitlines()
    assert lines[0] == HEADER.strip() + ",reject_line,reject_field,reject_reason"
    assert lines[1].startswith("+7000,C-11,active,2020-01-01,3,phone_number,")


async def test_missing_columns_reject_the_file(make_gateway: HarnessFactory) -> None:
    """A file without the required header columns is refused before any row is read."""
    h: Harness = await make_gateway()
    with pytest.raises(InvalidFile) as caught:
        h.import_csv("phone,contract\n+79161234567,C-1\n")
    assert {p.field for p in caught.value.problems} == {"phone_number", "contract_id", "status",
                                                        "activated_at"}


async def test_delta_import_that_ends_a_contract_notifies_organizers(
        make_gateway: HarnessFactory) -> None:
    """A termination or a new contract arriving by import is a lifecycle event with notices."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    await h.identify("+79161234567", "u-terminated")
    await h.identify("+79031112233", "u-reassigned")
    report = h.import_csv(HEADER + "+79161234567,C-1,terminated,2021-03-01\n"
                          "+79031112233,C-NEW,active,2026-01-01\n")
    assert (report.updated, report.notices) == (2, 2)
    await h.deliver_notices()
    kinds = sorted(n.read().decode().split('"type":"')[1].split('"')[0] for n in h.notices)
    assert kinds == ["org.numident.notice.contract_terminated",
                     "org.numident.notice.number_reassigned"]
    with h.gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 2


def test_streamed_read_reports_rows_and_problems_in_line_order(tmp_path: Path) -> None:
    """One pass over the file gives every good row with its line and every problem by line."""
    lines = [f"+7916{n:07d},C-{n},active,2024-01-01" for n in range(3000)]
    lines[10] = "+7916abc,C-x,active,2024-01-01"
    lines[2700] = "+79160002701,C-2701,sleeping,2024-01-01"
    path = tmp_path / "export.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    _, items = export_file.read_rows(path, export_file.RowRules(datetime.now(UTC)))
    read = list(items)
    problems = [(p.line, p.field) for p in read if isinstance(p, FileProblem)]
    rows = [item for item in read if not isinstance(item, FileProblem)]
    assert problems == [(12, "phone_number"), (2702, "status")]
    assert len(rows) == 2998
    assert rows[0] == (2, export_file.SubscriberRow("+79160000000", "C-0", ContractStatus.ACTIVE,
                                                    datetime(2024, 1, 1, tzinfo=UTC)))
    assert rows[-1][0] == 3001


async def test_a_file_with_many_problems_reports_the_first_by_line_and_counts_all(
        make_gateway: HarnessFactory) -> None:
    """Duplicates found in the staged rows merge with row problems in line order; the
    refusal shows the first hundred and counts every one."""
    h: Harness = await make_gateway()
    lines = [f"+7916{n:07d},C-{n},active,2024-01-01\n" for n in range(300)]
    lines[5] = "+79160000000,C-dup,active,2024-01-01\n"  # line 7 repeats line 2
    for n in range(100, 300):
        lines[n] = f"+7916{n:07d},C-{n},sleeping,2024-01-01\n"
    with pytest.raises(InvalidFile) as caught:
        h.import_csv(HEADER + "".join(lines))
    assert caught.value.total == 201
    assert [(p.line, p.field) for p in caught.value.problems[:2]] == [
        (7, "phone_number"), (102, "status")]
    assert len(caught.value.problems) == 100
    assert registry(h) == {}


async def test_a_partial_import_keeps_the_first_line_of_a_repeated_number(
        make_gateway: HarnessFactory) -> None:
    """With the partial flag a repeated number loads from its first line; later ones are
    rejected naming that first line."""
    h: Harness = await make_gateway()
    rejects = h.home / "rejects.csv"
    report = h.import_csv(HEADER + "+79161110000,C-1,active,2020-01-01\n"
                          "+79161110001,C-2,active,2020-01-01\n"
                          "+79161110000,C-3,terminated,2020-01-01\n",
                          partial=True, reject_file=rejects)
    assert (report.rows, report.inserted, report.rejected) == (2, 2, 1)
    assert registry(h) == {"+79161110000": ("C-1", "active"),
                           "+79161110001": ("C-2", "active")}
    assert "already given on line 2" in rejects.read_text(encoding="utf-8").splitlines()[1]


async def test_an_older_export_does_not_bring_an_ended_contract_back(
        make_gateway: HarnessFactory) -> None:
    """A number ported out is not confirmed again because an export made before the port
    lists its contract in force: the line is refused naming it, and nothing changes; the
    number may come back under a new contract."""
    h: Harness = await make_gateway()
    h.import_csv(SUBSCRIBERS)
    h.import_csv(HEADER + "+79161234567,C-1,terminated,2021-03-01\n")
    with pytest.raises(InvalidFile) as refused:
        h.import_csv(SUBSCRIBERS)
    assert [(p.line, p.field) for p in refused.value.problems] == [(2, "status")]
    assert "C-1 of +79161234567 has ended" in refused.value.problems[0].message
    assert (await h.identify("+79161234567", "u-1")).json()["result"] == "not_found"
    again = h.import_csv(HEADER + "+79161234567,C-9,active,2026-11-01\n")
    assert again.updated == 1
    assert (await h.identify("+79161234567", "u-2")).json()["result"] == "confirmed"
