"""Alembic environment of the operator schema; the connection is handed in by numident."""

from __future__ import annotations

from alembic import context

from numident.storage.migrate import metadata_for

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata_for("operator"),
    version_table=config.get_main_option("version_table") or "alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
