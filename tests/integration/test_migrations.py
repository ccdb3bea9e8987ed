"""Each side's Alembic history: one head, upgrades from empty, matches the models, reverses."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

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
