"""The export's optional columns: contract type and KYC holder attributes, checked and kept.

Attributes KYC Match compares only for equality are kept as digests under the holder key.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from operator_harness import Harness, HarnessFactory
from sqlalchemy import func, select

from numident.camara.holders import HOLDER_COLUMNS
from numident.errors import FileProblem, InvalidFile
from numident.operator import export_file
from numident.operator.tables import holders, subscribers
from numident.trust.holder_key import HolderKey

pytestmark = pytest.mark.anyio
HEADER = ("phone_number,contract_id,status,activated_at,contract_type,given_name,birthdate,"
          "email,gender,country,bank_account_number,id_document_type\n")


def key(h: Harness) -> HolderKey:
    return h.app.state.holder_key  # type: ignore[no-any-return]


def stored(h: Harness) -> dict[str, dict[str, object]]:
    with h.gateway.engine.connect() as conn:
        return {r.phone_number: dict(r._mapping) for r in conn.execute(select(holders))}


async def test_optional_columns_are_stored_in_canonical_form(make_gateway: HarnessFactory
                                                             ) -> None:
    h: Harness = await make_gateway()
    report = h.import_csv(HEADER + "+79161234567,C-1,active,2021-03-01,payg, Anna ,1990-05-17,"
                          "anna@example.ru,female,ru,IBAN:RU0012,Passport\n"
                          "+79161234568,C-2,active,2022-01-01,,,,,,,,\n", holder_key=key(h))
    assert (report.inserted, report.rejected) == (2, 0)
    rows = stored(h)
    anna = rows["+79161234567"]
    assert (anna["contract_id"], anna["contract_type"], anna["given_name"], anna["email"]) == \
        ("C-1", "PAYG", "Anna", "anna@example.ru")
    digest = key(h).digest
    assert (anna["birthdate"], anna["gender"], anna["country"], anna["bank_account_number"],
            anna["id_document_type"], anna["holder_key_id"]) == (
        digest("birthdate", "+79161234567", "1990-05-17"),
        digest("gender", "+79161234567", "FEMALE"), digest("country", "+79161234567", "RU"),
        digest("bank_account_number", "+79161234567", "IBANRU0012"),
        digest("id_document_type", "+79161234567", "PASSPORT"), key(h).id)
    assert anna["family_name"] is None
    unknown = rows["+79161234568"]
    assert unknown["contract_type"] is None
    assert unknown["given_name"] is None
    assert unknown["birthdate"] is None


async def test_exact_match_attributes_are_never_stored_in_clear(make_gateway: HarnessFactory
                                                                ) -> None:
    """Neither the value nor its canonical form is anywhere in the row; the digest is keyed."""
    h: Harness = await make_gateway()
    h.import_csv(HEADER + "+79161234567,C-1,active,2021-03-01,PAYG,Anna,1990-05-17,"
                 "anna@example.ru,FEMALE,RU,IBAN:RU0012,passport\n", holder_key=key(h))
    row = stored(h)["+79161234567"]
    clear = ("1990-05-17", "19900517", "FEMALE", "RU0012", "passport", "PASSPORT")
    assert not any(text in str(value) for text in clear for value in row.values())
    assert row["country"] != "RU"
    for column in ("birthdate", "gender", "country", "bank_account_number", "id_document_type"):
        assert re.fullmatch(r"[0-9a-f]{64}", str(row[column])), column
    unkeyed = hashlib.sha256(b"1990-05-17").hexdigest()
    assert row["birthdate"] != unkeyed
    assert row["birthdate"] != HolderKey(bytes(32)).digest("birthdate", "+79161234567",
                                                           "1990-05-17")


async def test_exact_match_attributes_are_refused_without_the_holder_key(
        make_gateway: HarnessFactory) -> None:
    """Such values are never written in clear for want of a key: nothing is written."""
    h: Harness = await make_gateway()
    with pytest.raises(ValueError, match="birthdate needs the holder key"):
        h.import_csv(HEADER + "+79161234567,C-1,active,2021-03-01,PAYG,Anna,1990-05-17,,,,,\n")
    assert stored(h) == {}
    with h.gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subscribers)).scalar_one() == 0


async def test_a_plain_export_writes_no_holder_rows_and_keeps_earlier_ones(
        make_gateway: HarnessFactory) -> None:
    h: Harness = await make_gateway()
    h.import_csv(HEADER + "+79161234567,C-1,active,2021-03-01,PAYM,Anna,,,,,,\n")
    h.import_csv("phone_number,contract_id,status,activated_at\n"
                 "+79161234567,C-1,active,2021-03-01\n+79161234570,C-5,active,2021-03-01\n")
    rows = stored(h)
    assert set(rows) == {"+79161234567"}
    assert rows["+79161234567"]["contract_type"] == "PAYM"


async def test_a_reimport_replaces_the_holder_values(make_gateway: HarnessFactory) -> None:
    h: Harness = await make_gateway()
    h.import_csv(HEADER + "+79161234567,C-1,active,2021-03-01,PAYM,Anna,,,,,,\n")
    h.import_csv(HEADER + "+79161234567,C-7,active,2024-01-01,Business,Boris,,,,,,\n")
    row = stored(h)["+79161234567"]
    assert (row["contract_id"], row["contract_type"], row["given_name"]) == \
        ("C-7", "Business", "Boris")
    with h.gateway.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(subscribers)).scalar_one() == 1


async def test_bad_optional_values_are_refused_with_line_and_field(make_gateway: HarnessFactory
                                                                   ) -> None:
    h: Harness = await make_gateway()
    bad = (HEADER
           + "+79161110001,C-1,active,2020-01-01,Prepaid,,,,,,,\n"
           + "+79161110002,C-2,active,2020-01-01,,,1990-13-01,,,,,\n"
           + "+79161110003,C-3,active,2020-01-01,,,,anna@,,,,\n"
           + "+79161110004,C-4,active,2020-01-01,,,,,X,,,\n"
           + "+79161110005,C-5,active,2020-01-01,,,,,,RUS,,\n"
           + "+79161110006,C-6,active,2020-01-01,,,,,,,RU0012,\n"
           + "+79161110007,C-7,active,2020-01-01,,,,,,,,visa\n"
           + "+79161110008,C-8,active,2020-01-01,," + "A" * 101 + ",,,,,,\n"
           + "+79161110009,C-9,active,2020-01-01,PAYM,Anna,1990-01-01,a@b.ru,MALE,RU,,\n")
    with pytest.raises(InvalidFile) as caught:
        h.import_csv(bad)
    assert [(p.line, p.field) for p in caught.value.problems] == [
        (2, "contract_type"), (3, "birthdate"), (4, "email"), (5, "gender"), (6, "country"),
        (7, "bank_account_number"), (8, "id_document_type"), (9, "given_name")]
    assert "PAYG, PAYM, Business" in caught.value.problems[0].message
    assert stored(h) == {}


async def test_a_partial_import_rejects_rows_with_bad_optional_values(
        make_gateway: HarnessFactory) -> None:
    h: Harness = await make_gateway()
    rejects = h.home / "rejects.csv"
    report = h.import_csv(HEADER + "+79161110001,C-1,active,2020-01-01,Prepaid,,,,,,,\n"
                          "+79161110002,C-2,active,2020-01-01,PAYG,,,,,,,\n",
                          partial=True, reject_file=rejects)
    assert (report.inserted, report.rejected) == (1, 1)
    assert set(stored(h)) == {"+79161110002"}
    assert ",2,contract_type," in rejects.read_text(encoding="utf-8").splitlines()[1]


def test_the_optional_columns_are_read_with_their_problems(tmp_path: Path) -> None:
    """The holder values are parsed per row and a bad one is named by line and column."""
    path = tmp_path / "export.csv"
    lines = [f"+7916{n:07d},C-{n},active,2020-01-01,{'PAYM' if n % 7 else 'Prepaid'},"
             f"Name {n},,,,,," for n in range(2000)]
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    _, items = export_file.read_rows(path, export_file.RowRules(datetime.now(UTC),
                                                                columns=HOLDER_COLUMNS))
    read = list(items)
    problems = [p for p in read if isinstance(p, FileProblem)]
    rows = [item[1] for item in read if not isinstance(item, FileProblem)]
    assert len(problems) == 286
    assert {p.field for p in problems} == {"contract_type"}
    assert problems[0].line == 2
    assert rows[1].holder is not None
    assert rows[1].holder[:2] == ("PAYM", None)
