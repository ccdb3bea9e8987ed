"""account audit operator: each entry names the account's operator then, for reports by operator

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01 12:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries written before this revision name no operator (NULL): reports show them apart.
    # Plain ALTER TABLE, not batch mode: a copied table would lose its append-only triggers.
    op.add_column('account_audit', sa.Column(
        'operator_inn', sa.String(length=16), nullable=True,
        comment="the account's operator (ИНН) when the entry was written"))
    op.create_index('ix_account_audit_at', 'account_audit', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_account_audit_at', table_name='account_audit')
    op.drop_column('account_audit', 'operator_inn')
