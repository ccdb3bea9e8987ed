"""audit chain: seq and hash on every audit entry, signed checkpoints; existing rows chained

Revision ID: 0012
Revises: 0013
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

from alembic import op

from numident.audit.migration import audit_log, chain_table, unchain_table

revision = '0012'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    chain_table(op, audit_log("operator"))


def downgrade() -> None:
    unchain_table(op, audit_log("operator"))
