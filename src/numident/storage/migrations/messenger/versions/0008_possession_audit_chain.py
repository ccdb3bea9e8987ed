"""possession audit chain: seq and hash on every possession audit entry, signed checkpoints

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 14:15:00
"""

from __future__ import annotations

from alembic import op

from numident.audit.migration import chain_table, possession_log, unchain_table

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    chain_table(op, possession_log())


def downgrade() -> None:
    unchain_table(op, possession_log())
