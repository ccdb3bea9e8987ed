"""Each side's Alembic history: one head, upgrades from empty, matches the models, reverses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

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
