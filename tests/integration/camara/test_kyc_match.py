"""KYC Match: given attributes against the line's holder, per attribute, with scores.

Exact-match attributes are stored as digests under the holder key; the billing import (CLI) and
the gateway find the same key in the home or in ``operator.camara.holder_key``.
"""

from __future__ import annotations

import re
import secrets
import stat
from pathlib import Path
from typing import Any

import pytest
from operator_harness import ADMIN, SESSION_HEADER, Harness, HarnessFactory
from sqlalchemy import select
from typer.testing import CliRunner

from numident.cli.main import app as cli
from numident.operator.tables import holders
from numident.trust.holder_key import HolderKey

pytestmark = pytest.mark.anyio
SCOPE = "kyc-match:match"
MATCH = "/kyc-match/vwip/match"
LINE, PARTS, BARE, OTHER = "+34629255833", "+34629255834", "+34629255835", "+34629255836"
EXPORT = (
    "phone_number,contract_id,status,activated_at,id_document,id_document_type,"
    "id_document_expiry_date,bank_account_number,name,given_name,family_name,"
    "name_kana_hankaku,name_kana_zenkaku,middle_names,family_name_at_birth,address,"
    "street_name,street_number,postal_code,region,locality,country,house_number_extension,"
    "birthdate,email,gender,city_of_birth,country_of_birth,nationality\n"
    f"{LINE},C-1,active,2020-01-01,66666666Q,passport,2027-07-12,IBAN:NL59ABNA0123456789,"
    "Federica Sanchez Arjona,Federica,Sanchez Arjona,ﾌｪﾃﾞﾘｶ,フェデリカ,Maria,Arjona,"
    "Nicolas Salmeron 4,Nicolas Salmeron,4,28004,Madrid,Madrid,ES,B,1978-08-22,"
    "federica@example.com,female,Madrid,ES,es\n"
    f"{PARTS},C-2,active,2020-01-01,,,,,,Jan,de Vries,,,Pieter,,,Keizersgracht,12,,,,NL,A,,,,,,\n"
    f"{BARE},C-3,active,2020-01-01,,,,,,,,,,,,,,,,,,,,,,,,,\n"
    f"{OTHER},C-4,active,2020-01-01,,,,,,,,,,,,,,,,,,,,,,,,,\n"
)
SAME = {
    "idDocument": "66666666q", "idDocumentType": "passport", "idDocumentExpiryDate": "2027-07-12",
    "bankAccountNumber": "IBAN:NL59ABNA0123456789", "name": "FEDERICA SÁNCHEZ ARJONA",
    "givenName": "federica", "familyName": "Sánchez-Arjona", "nameKanaHankaku": "ﾌｪﾃﾞﾘｶ",
    "nameKanaZenkaku": "フェデリカ", "middleNames": "María", "familyNameAtBirth": "Arjona",
    "address": "Nicolás Salmerón, 4", "streetName": "Nicolas Salmeron", "streetNumber": "4",
    "postalCode": "28 004", "region": "Madrid", "locality": "madrid", "country": "es",
    "houseNumberExtension": "b", "birthdate": "1978-08-22", "email": "Federica@Example.com",
    "gender": "FEMALE", "cityOfBirth": "Madrid", "countryOfBirth": "ES", "nationality": "ES",
}
DIFFERENT = {
    "idDocument": "66666666R", "idDocumentType": "national_id_card",
    "idDocumentExpiryDate": "2027-07-13", "bankAccountNumber": "IBAN:NL59ABNA0123456780",
    "name": "Frederica Sanches Arjona", "givenName": "Frederica", "familyName": "Sanches Arjona",
    "nameKanaHankaku": "ﾌｪﾃﾘｶ", "nameKanaZenkaku": "フェテリカ", "middleNames": "Mario",
    "familyNameAtBirth": "Arjana", "address": "Nicolas Salmeron 5", "streetName": "Nicola Salmeron",
    "streetNumber": "41", "postalCode": "28005", "region": "Madrit", "locality": "Madri",
    "country": "PT", "houseNumberExtension": "C", "birthdate": "1978-08-23",
    "email": "federico@example.com", "gender": "MALE", "cityOfBirth": "Madrit",
    "countryOfBirth": "PT", "nationality": "PT",
}
SCORED = {"name", "givenName", "familyName", "nameKanaHankaku", "nameKanaZenkaku",
          "middleNames", "familyNameAtBirth", "address", "streetName", "streetNumber", "region",
          "locality", "email", "cityOfBirth"}
CLEAR = SCORED | {"houseNumberExtension"}
"""What is stored as text: the scored attributes and an address part."""
KEYED_COLUMNS = ("id_document", "id_document_type", "id_document_expiry_date",
                 "bank_account_number", "postal_code", "country", "birthdate", "gender",
                 "country_of_birth", "nationality")
"""The export columns of the attributes not in CLEAR."""


async def gateway(make_gateway: HarnessFactory, imported: bool = True, **operator: Any
                  ) -> Harness:
    """A gateway with organizers; ``imported``: EXPORT loaded under the gateway's key."""
    h: Harness = await make_gateway(register=False, **operator)
    h.register("chat", scopes=[SCOPE])
    h.register("other", scopes=["identification"])
    if imported:
        h.import_csv(EXPORT, holder_key=h.app.state.holder_key)
    return h


def stored_row(h: Harness, number: str) -> dict[str, Any]:
    with h.gateway.engine.connect() as conn:
        return dict(conn.execute(select(holders).where(holders.c.phone_number == number))
                    .one()._mapping)


def cli_import(tmp_path: Path, database_url: str, home: Path, **camara: str) -> None:
    """``numident operator import-subscribers`` of EXPORT, configured by a TOML file."""
    export, config = tmp_path / "cli-export.csv", tmp_path / "cli.toml"
    export.write_text(EXPORT, encoding="utf-8")
    table = "".join(f'{name} = "{value}"\n' for name, value in camara.items())
    config.write_text(f'home = "{home}"\ndatabase_url = "{database_url}"\n'
                      '[operator]\nallowed_regions = ["ES"]\n'
                      f"[operator.camara]\n{table}", encoding="utf-8")
    migrated = CliRunner().invoke(cli, ["operator", "migrate", "--config", str(config)],
                                  catch_exceptions=False)
    assert migrated.exit_code == 0, migrated.output
    result = CliRunner().invoke(cli, ["operator", "import-subscribers", str(export),
                                      "--config", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output


async def match(h: Harness, body: object, headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, Any]]:
    return await h.camara(MATCH, SCOPE, body, headers)


async def test_every_attribute_matching_the_holder_is_true_without_scores(
        make_gateway: HarnessFactory) -> None:
    """Case, accents, punctuation and spacing do not matter; no score on a match."""
    h = await gateway(make_gateway)
    status, body = await match(h, {"phoneNumber": LINE, **SAME})
    assert status == 200
    assert body == {f"{name}Match": "true" for name in SAME}


async def test_every_attribute_differing_is_false_and_text_ones_carry_a_score(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    status, body = await match(h, {"phoneNumber": LINE, **DIFFERENT})
    assert status == 200
    expected_keys = {f"{n}Match" for n in DIFFERENT} | {f"{n}MatchScore" for n in SCORED}
    assert set(body) == expected_keys
    assert all(body[f"{n}Match"] == "false" for n in DIFFERENT)
    for name in SCORED:
        assert 0 <= body[f"{name}MatchScore"] <= 99
        assert body[f"{name}MatchScore"] >= 70, name  # each is one slip from the holder's
    assert "federica@example.com" not in str(body)


async def test_exact_match_attributes_are_stored_only_as_keyed_digests(
        make_gateway: HarnessFactory) -> None:
    """What is not scored is not kept in clear (nor canonical form); what is scored is."""
    h = await gateway(make_gateway)
    row = stored_row(h, LINE)
    key: HolderKey = h.app.state.holder_key
    for column in KEYED_COLUMNS:
        assert re.fullmatch(r"[0-9a-f]{64}", row[column]), column
    clear = ("66666666", "NL59ABNA", "2027-07-12", "1978-08-22", "19780822", "PASSPORT",
             "passport", "FEMALE", "28004")
    assert not [text for text in clear if text in str(row)]
    assert row["id_document"] == key.digest("id_document", LINE, "66666666Q")
    assert row["holder_key_id"] == key.id
    assert (row["name"], row["given_name"], row["email"], row["house_number_extension"]) == \
        ("Federica Sanchez Arjona", "Federica", "federica@example.com", "B")


async def test_digests_stored_under_another_key_are_not_available(make_gateway: HarnessFactory
                                                                 ) -> None:
    """Digests of an import under another key cannot be compared: not_available, never false.

    ``false`` would tell the organizer that the customer's document or birth date differs from
    the holder's, when the gateway cannot tell; scored attributes, kept as text, still answer.
    """
    h = await gateway(make_gateway, imported=False)
    h.import_csv(EXPORT, holder_key=HolderKey(secrets.token_bytes(32)))
    for given in (SAME, DIFFERENT):
        status, body = await match(h, {"phoneNumber": LINE, **given})
        assert status == 200
        assert {n: body[f"{n}Match"] for n in given if n not in CLEAR} == \
            {n: "not_available" for n in given if n not in CLEAR}
        assert all(body[f"{n}Match"] == ("true" if given is SAME else "false") for n in CLEAR)
    h.import_csv(EXPORT, holder_key=h.app.state.holder_key)
    assert await match(h, {"phoneNumber": LINE, **SAME}) == \
        (200, {f"{name}Match": "true" for name in SAME})


async def test_the_import_command_and_the_gateway_share_the_key_kept_in_the_home(
        make_gateway: HarnessFactory, database_url: str, tmp_path: Path) -> None:
    """The command creates the key owner-only on first use; the gateway reads the same one."""
    cli_import(tmp_path, database_url, tmp_path)
    path = tmp_path / "operator" / "holder-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", path.read_text(encoding="ascii"))
    h = await gateway(make_gateway, imported=False)
    assert h.app.state.holder_key == HolderKey(bytes.fromhex(path.read_text(encoding="ascii")))
    assert await match(h, {"phoneNumber": LINE, **SAME}) == \
        (200, {f"{name}Match": "true" for name in SAME})


async def test_a_configured_key_wins_and_is_shared_by_import_hosts_and_replicas(
        make_gateway: HarnessFactory, database_url: str, tmp_path: Path) -> None:
    """``operator.camara.holder_key`` replaces the home's key: homes do not matter then."""
    shared = secrets.token_hex(32)
    cli_import(tmp_path, database_url, tmp_path / "import-host", holder_key=shared)
    assert not (tmp_path / "import-host" / "operator" / "holder-key").exists()
    replica = await gateway(make_gateway, imported=False,
                            camara={"session_header": SESSION_HEADER, "holder_key": shared})
    assert await match(replica, {"phoneNumber": LINE, "birthdate": "1978-08-22",
                                 "idDocument": "66666666Q"}) == \
        (200, {"birthdateMatch": "true", "idDocumentMatch": "true"})
    unconfigured = await gateway(make_gateway, imported=False)
    assert await match(unconfigured, {"phoneNumber": LINE, "birthdate": "1978-08-22"}) == \
        (200, {"birthdateMatch": "not_available"})


async def test_only_the_attributes_asked_are_answered(make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    assert await match(h, {"phoneNumber": LINE, "givenName": "Federica",
                           "birthdate": "1978-08-22"}) == \
        (200, {"givenNameMatch": "true", "birthdateMatch": "true"})


async def test_attributes_the_operator_does_not_hold_are_not_available(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    status, body = await match(h, {"phoneNumber": BARE, **SAME})
    assert status == 200
    assert body == {f"{name}Match": "not_available" for name in SAME}


async def test_a_full_name_and_address_compare_with_the_parts_held(
        make_gateway: HarnessFactory) -> None:
    """With only parts held, the name and address are compared with their usual joins."""
    h = await gateway(make_gateway)
    assert await match(h, {"phoneNumber": PARTS, "name": "Jan Pieter de Vries",
                           "address": "Keizersgracht 12 A"}) == \
        (200, {"nameMatch": "true", "addressMatch": "true"})
    assert await match(h, {"phoneNumber": PARTS, "name": "de Vries Jan",
                           "address": "12 Keizersgracht"}) == \
        (200, {"nameMatch": "true", "addressMatch": "true"})
    status, body = await match(h, {"phoneNumber": PARTS, "name": "Jan de Vris",
                                   "givenName": "Federica"})
    assert status == 200
    assert body["nameMatch"] == "false"
    assert 90 <= body["nameMatchScore"] <= 99
    assert body["givenNameMatch"] == "false"


async def test_a_new_holder_is_not_matched_with_the_previous_holders_attributes(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway)
    response = await h.client.post("/admin/v1/events", headers=ADMIN, json={
        "type": "number_reassigned", "phoneNumber": LINE, "newContractId": "C-9",
        "occurredAt": "2025-01-01T00:00:00Z"})
    assert response.status_code == 201, response.text
    assert await match(h, {"phoneNumber": LINE, "givenName": "Federica"}) == \
        (200, {"givenNameMatch": "not_available"})


async def test_a_body_needs_an_attribute_besides_the_phone_number(make_gateway: HarnessFactory
                                                                  ) -> None:
    h = await gateway(make_gateway, camara={"session_header": "X-Network-Session"})
    status, body = await match(h, {"phoneNumber": LINE})
    assert (status, body["status"], body["code"]) == \
        (400, 400, "KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION")
    line = {"Authorization": f"Bearer {await h.line_token(LINE, SCOPE)}"}
    status, body = await match(h, {"phoneNumber": LINE}, line)
    assert (status, body["code"]) == (400, "KNOW_YOUR_CUSTOMER.INVALID_PARAM_COMBINATION")
    empty: dict[str, str] | None
    for empty in ({}, None):
        status, body = await match(h, empty)
        assert (status, body["code"]) == (400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("wrong", [
    {"email": "federica.example.com"}, {"email": "a b@example.com"}, {"gender": "female"},
    {"country": "ESP"}, {"nationality": "E1"}, {"bankAccountNumber": "NL59ABNA0123456789"},
    {"birthdate": "22/08/1978"}, {"idDocumentType": "visa"}, {"givenName": "x" * 101},
    {"givenName": 7}, {"nickname": "Fede"},
])
async def test_attributes_outside_the_schema_are_invalid_arguments(
        make_gateway: HarnessFactory, wrong: dict[str, object]) -> None:
    h = await gateway(make_gateway)
    status, body = await match(h, {"phoneNumber": LINE, "name": "Federica", **wrong})
    assert (status, body["code"]) == (400, "INVALID_ARGUMENT")


async def test_three_legged_tokens_name_the_line_and_a_different_number_is_refused(
        make_gateway: HarnessFactory) -> None:
    h = await gateway(make_gateway, camara={"session_header": "X-Network-Session"})
    line = {"Authorization": f"Bearer {await h.line_token(LINE, SCOPE)}",
            "x-correlator": "kyc-1"}
    assert await match(h, {"givenName": "Federica"}, line) == (200, {"givenNameMatch": "true"})
    assert await match(h, {"phoneNumber": LINE, "givenName": "Federica"}, line) == \
        (200, {"givenNameMatch": "true"})
    status, body = await match(h, {"phoneNumber": OTHER, "givenName": "Federica"}, line)
    assert (status, body["status"], body["code"]) == (403, 403, "INVALID_TOKEN_CONTEXT")
    status, body = await match(h, {"givenName": "Federica"})
    assert (status, body["code"]) == (422, "MISSING_IDENTIFIER")


async def test_unknown_lines_lines_not_served_and_token_refusals(make_gateway: HarnessFactory
                                                                 ) -> None:
    h = await gateway(make_gateway, camara={"not_applicable_prefixes": [OTHER]})
    cases = [
        (None, "+34600000000", 404, "IDENTIFIER_NOT_FOUND"),
        (None, OTHER, 422, "SERVICE_NOT_APPLICABLE"),
        ({}, LINE, 401, "UNAUTHENTICATED"),
        ({"Authorization": "Bearer nonsense"}, LINE, 401, "UNAUTHENTICATED"),
        ({"Authorization": f"Bearer {await h.token('other')}"}, LINE, 403, "PERMISSION_DENIED"),
    ]
    for headers, number, status, code in cases:
        got_status, got = await match(h, {"phoneNumber": number, "name": "Federica"}, headers)
        assert (got_status, got["status"], got["code"]) == (status, status, code)


RELEASE_0_4 = "/kyc-match/v0.4/match"


async def test_release_0_4_has_no_bank_account_nor_limits_and_free_form_countries(
        make_gateway: HarnessFactory) -> None:
    """0.4.0 refuses ``bankAccountNumber`` (undeclared there) and accepts a long name and a
    country that is no ISO code, which WIP refuses; the same line, the same verdicts."""
    h = await gateway(make_gateway)
    long_name = "Federica" + "a" * 120
    for body, released, wip in [
            ({"bankAccountNumber": SAME["bankAccountNumber"]}, 400, 200),
            ({"country": "Spain"}, 200, 400),
            ({"givenName": long_name}, 200, 400)]:
        status, _ = await h.camara(RELEASE_0_4, SCOPE, {"phoneNumber": LINE, **body})
        assert status == released, body
        status, _ = await h.camara(MATCH, SCOPE, {"phoneNumber": LINE, **body})
        assert status == wip, body
    status, refused = await h.camara(RELEASE_0_4, SCOPE, {"phoneNumber": LINE,
                                                          "bankAccountNumber": "IBAN:X1"})
    assert (refused["code"], refused["message"]) == ("INVALID_ARGUMENT",
                                                     "unknown field 'bankAccountNumber'")
    same = {k: v for k, v in SAME.items() if k != "bankAccountNumber"}
    status, body = await h.camara(RELEASE_0_4, SCOPE, {"phoneNumber": LINE, **same})
    assert (status, body) == (200, {f"{name}Match": "true" for name in same})


async def test_release_0_4_documents_its_own_request_body(make_gateway: HarnessFactory) -> None:
    """The 0.4 document has no bank account and no length limits; WIP's has both."""
    h = await gateway(make_gateway)
    schemas = {}
    for segment in ("v0.4", "vwip"):
        document = (await h.client.get(f"/kyc-match/{segment}/openapi.json")).json()
        schemas[segment] = document["components"]["schemas"]["KYC_MatchRequestBody"]
    assert "bankAccountNumber" not in schemas["v0.4"]["properties"]
    assert "bankAccountNumber" in schemas["vwip"]["properties"]
    assert "maxLength" not in str(schemas["v0.4"]["properties"]["givenName"])
    assert "'maxLength': 100" in str(schemas["vwip"]["properties"]["givenName"])


async def test_second_level_validation_requires_the_holders_id_document_in_0_4(
        make_gateway: HarnessFactory) -> None:
    """With ``kyc_match_id_document_required``, 0.4 answers only a request carrying the
    holder's idDocument (403 ID_DOCUMENT_REQUIRED without it, ID_DOCUMENT_MISMATCH with
    another, or for a line with none stored); WIP, which defines no such rule, answers."""
    h = await gateway(make_gateway, camara={"kyc_match_id_document_required": True})
    cases = [
        ({"phoneNumber": LINE, "givenName": "Federica"}, 403,
         "KNOW_YOUR_CUSTOMER.ID_DOCUMENT_REQUIRED"),
        ({"phoneNumber": LINE, "idDocument": "66666666R", "givenName": "Federica"}, 403,
         "KNOW_YOUR_CUSTOMER.ID_DOCUMENT_MISMATCH"),
        ({"phoneNumber": BARE, "idDocument": "66666666Q", "givenName": "Federica"}, 403,
         "KNOW_YOUR_CUSTOMER.ID_DOCUMENT_MISMATCH"),
    ]
    for request, status, code in cases:
        got, body = await h.camara(RELEASE_0_4, SCOPE, request)
        assert (got, body["status"], body["code"]) == (status, status, code), request
        assert body["message"]
    status, body = await h.camara(RELEASE_0_4, SCOPE, {
        "phoneNumber": LINE, "idDocument": "66666666q", "givenName": "Frederica"})
    assert status == 200
    assert body["idDocumentMatch"] == "true"
    assert body["givenNameMatch"] == "false"
    status, body = await h.camara(MATCH, SCOPE, {"phoneNumber": LINE, "givenName": "Federica"})
    assert (status, body) == (200, {"givenNameMatch": "true"})


async def test_without_second_level_validation_0_4_matches_without_id_document(
        make_gateway: HarnessFactory) -> None:
    """The operator's default: no idDocument needed in any version."""
    h = await gateway(make_gateway)
    status, body = await h.camara(RELEASE_0_4, SCOPE, {"phoneNumber": LINE,
                                                       "givenName": "Federica"})
    assert (status, body) == (200, {"givenNameMatch": "true"})
