"""an attempt remembers the notice that voided its question

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import numident.storage.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('identification_attempts') as batch:
        batch.add_column(sa.Column(
            'invalidated_by', sa.String(length=128), nullable=True,
            comment='the notice that voided the question in flight; its answer is asked again'))
        batch.add_column(sa.Column(
            'invalidated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('identification_attempts') as batch:
        batch.drop_column('invalidated_at')
        batch.drop_column('invalidated_by')
