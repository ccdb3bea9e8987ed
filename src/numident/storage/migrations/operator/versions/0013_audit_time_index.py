"""audit time index: SLA reports read the audit trail by period and action

Revision ID: 0013
Revises: 0007
Create Date: 2026-12-01 12:40:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_audit_action_at', 'audit', ['action', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_action_at', table_name='audit')
