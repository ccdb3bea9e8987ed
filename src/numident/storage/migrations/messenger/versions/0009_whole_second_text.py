"""whole-second timestamps on SQLite stored with their fraction, as Core stores them

identify-all's driver-level writes (accounts and their bulk identification rows) bound
their times through sqlite3's adapter, which writes a whole second as ``12:00:00`` where
every other writer writes ``12:00:00.000000``; SQLite compares the texts, so one instant
written both ways compared unequal. They now bind Core's text; this gives the rows stored
before the text Core writes (see numident.storage.timestamp_text). Nothing to do on
PostgreSQL. The downgrade keeps the text: both forms read the same.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 00:10:00.000000
"""

from __future__ import annotations

from alembic import op

from numident.storage.timestamp_text import complete_whole_seconds

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    complete_whole_seconds(op)


def downgrade() -> None:
    pass
