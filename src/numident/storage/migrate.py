"""Alembic, driven from code: each side's schema has its own history and version table.

``upgrade(engine, side)`` brings a database to the newest schema; servers call it at start so
an installation never runs against an old schema. ``numident <side> migrate`` does the same.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

from numident.storage.schema import messenger_metadata, operator_metadata

Side = Literal["operator", "messenger"]
MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(side: Side) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / side))
    config.set_main_option("version_table", f"numident_{side}_version")
    return config


SCHEMA_MODULES: dict[Side, tuple[str, ...]] = {
    "operator": ("numident.operator.tables", "numident.camara.tables"),
    "messenger": ("numident.messenger.tables", "numident.routing.tables"),
}
"""The modules that declare each side's tables (every package owns its own). They are named,
not imported here: storage is the layer below them all."""


def metadata_for(side: Side) -> MetaData:
    """The side's whole schema: importing its table modules registers their tables."""
    for name in SCHEMA_MODULES[side]:
        importlib.import_module(name)
    return operator_metadata if side == "operator" else messenger_metadata


def upgrade(engine: Engine, side: Side, revision: str = "head") -> None:
    config = alembic_config(side)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(engine: Engine, side: Side, revision: str = "base") -> None:
    config = alembic_config(side)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def newest(side: Side) -> str | None:
    """The newest schema revision of ``side`` (the head of its migrations)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(side)).get_current_head()


def revisions(engine: Engine, side: Side) -> tuple[str | None, str | None]:
    """``(the database's schema revision, the newest)``; None for a database without one.

    Cheap (one read of the version table): commands check it before they touch the data."""
    from alembic.runtime.migration import MigrationContext

    config = alembic_config(side)
    with engine.connect() as conn:
        current = MigrationContext.configure(conn, opts={
            "version_table": config.get_main_option("version_table")}).get_current_revision()
    return current, newest(side)
