"""account audit chain: seq and hash on every account audit entry, signed checkpoints

Revision ID: 0005
Revises: 0007
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

from alembic import op

from numident.audit.migration import audit_log, chain_table, unchain_table

revision = '0005'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    chain_table(op, audit_log("messenger"))


def downgrade() -> None:
    unchain_table(op, audit_log("messenger"))
