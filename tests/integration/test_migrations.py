"""Each side's Alembic history: one head, upgrades from empty, matches the models, reverses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text

from numident.messenger.tables import accounts
from numident.operator.tables import subscribers
from numident.storage.database import create_database_engine
from numident.storage.migrate import Side, alembic_config, downgrade, metadata_for, upgrade

SIDES: list[Side] = ["operator", "messenger"]


@pytest.mark.parametrize("side", SIDES)
def test_history_has_a_single_head(side: Side) -> None:
    """Parallel migrations would leave two heads; there is exactly one."""
    assert len(ScriptDirectory.from_config(alembic_config(side)).get_heads()) == 1


@pytest.mark.parametrize("side", SIDES)
def test_upgrade_from_empty_gives_exactly_the_models(side: Side, database_url: str) -> None:
    """After upgrading an empty database, autogenerate finds nothing to change."""
    engine = create_database_engine(database_url)
    upgrade(engine, side)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": f"numident_{side}_version"})
        assert compare_metadata(context, metadata_for(side)) == []
    engine.dispose()


@pytest.mark.parametrize("side", SIDES)
def test_downgrade_to_base_and_upgrade_again(side: Side, database_url: str) -> None:
    """The history runs down to an empty schema and back up."""
    engine = create_database_engine(database_url)
    upgrade(engine, side)
    downgrade(engine, side, "base")
    leftover = set(inspect(engine).get_table_names()) - {f"numident_{side}_version"}
    assert leftover == set()
    upgrade(engine, side)
    assert set(metadata_for(side).tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_upgrade_keeps_the_last_confirmed_of_duplicate_active_usages(database_url: str) -> None:
    """Active usages of one code left by concurrent replicas: the last confirmed stays active.

    The others are ended as withdrawn for a number change, as the rules would have left them,
    so that the unique index of one active usage per (organizer, code) can be built.
    """
    engine = create_database_engine(database_url)
    upgrade(engine, "operator", "0004")
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organizers (name, notice_url, public_key, active, "
                          "created_at) VALUES ('chat', 'http://127.0.0.1:9/', '{}', true, "
                          ":at)"), {"at": early})
        for number, confirmed in (("+79160000001", early), ("+79160000002", late),
                                  ("+79160000003", early)):
            conn.execute(text(
                "INSERT INTO usages (organizer_id, identification_code, phone_number, status, "
                "since, last_confirmed_at) VALUES (1, 'user-1', :number, 'active', :at, :at)"),
                {"number": number, "at": confirmed})
    upgrade(engine, "operator")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT phone_number, status, end_reason FROM usages "
                                 "ORDER BY phone_number")).all()
    assert [tuple(r) for r in rows] == [("+79160000001", "withdrawn", "number_changed"),
                                        ("+79160000002", "active", None),
                                        ("+79160000003", "withdrawn", "number_changed")]
    engine.dispose()


def test_upgrade_keeps_the_earliest_of_duplicate_pending_requests(database_url: str) -> None:
    """A request queued twice by two replicas: the earliest stays pending, the repeat expires."""
    engine = create_database_engine(database_url)
    upgrade(engine, "operator", "0004")
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organizers (name, notice_url, public_key, active, "
                          "created_at) VALUES ('chat', 'http://127.0.0.1:9/', '{}', true, "
                          ":at)"), {"at": early})
        for request_id, received in (("r-late", late), ("r-early", early)):
            conn.execute(text(
                "INSERT INTO identification_requests (request_id, organizer_id, phone_number, "
                "identification_code, status, received_at, answer_due) VALUES (:id, 1, "
                "'+79160000001', 'user-1', 'pending', :at, :at)"),
                {"id": request_id, "at": received})
    upgrade(engine, "operator")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT request_id, status FROM identification_requests "
                                 "ORDER BY request_id")).all()
    assert [tuple(r) for r in rows] == [("r-early", "pending"), ("r-late", "expired")]
    engine.dispose()


NOON = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _upgraded_after_short_writes(database_url: str, side: Side, before: str,
                                 *inserts: str) -> Engine:
    """A database at revision ``before`` given ``inserts`` (their ``:at`` a whole second,
    written short on SQLite as the driver-level writes wrote it), then upgraded to the head."""
    engine = create_database_engine(database_url)
    upgrade(engine, side, before)
    short = "2026-01-01 12:00:00" if engine.dialect.name == "sqlite" else NOON
    with engine.begin() as conn:
        for insert in inserts:
            conn.execute(text(insert), {"at": short})
    upgrade(engine, side)
    return engine


def test_upgrade_gives_whole_seconds_stored_short_the_text_core_writes(
        database_url: str) -> None:
    """A registry imported when the import wrote a whole second as ``12:00:00``: after the
    upgrade its times are Core's text (so the same export lists every line unchanged), and
    an append-only audit entry keeps its text."""
    engine = _upgraded_after_short_writes(
        database_url, "operator", "0016",
        "INSERT INTO subscribers (phone_number, contract_id, status, activated_at, updated_at) "
        "VALUES ('+79160000001', 'C-1', 'active', :at, :at)",
        "INSERT INTO audit (at, actor, action) VALUES (:at, 'test', 'test')")
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT activated_at, updated_at FROM subscribers")).one()
        audited = conn.execute(text("SELECT at FROM audit")).scalar_one()
        found = conn.execute(select(subscribers.c.updated_at).where(
            subscribers.c.activated_at == NOON)).scalar_one()
    assert found == NOON  # Core's binding of the instant finds the line
    if engine.dialect.name == "sqlite":
        assert tuple(stored) == ("2026-01-01 12:00:00.000000",) * 2
        assert audited == "2026-01-01 12:00:00"
    engine.dispose()


def test_upgrade_gives_accounts_stored_short_the_text_core_writes(database_url: str) -> None:
    """The messenger's side: an account adopted with a whole-second time written short."""
    engine = _upgraded_after_short_writes(
        database_url, "messenger", "0008",
        "INSERT INTO accounts (account_id, state, identification_code, created_at, updated_at) "
        "VALUES ('a1', 'unidentified', 'c1', :at, :at)")
    with engine.connect() as conn:
        found = conn.execute(select(accounts.c.account_id).where(
            accounts.c.created_at == NOON, accounts.c.updated_at <= NOON)).scalar_one()
    assert found == "a1"
    engine.dispose()
