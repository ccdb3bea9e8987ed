"""bulk first identification of an existing user base

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import numident.storage.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bulk_identifications',
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('identification_code', sa.String(length=128), nullable=False),
    sa.Column('possession_proven_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('operator_inn', sa.String(length=16), nullable=True),
    sa.Column('operator_name', sa.String(length=256), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False, comment='queued | pending | identified | refused | unanswered | reidentification_required | skipped'),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True, comment="the gateway's, while pending"),
    sa.Column('sent_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('answer_due', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_bulk_identifications')),
    sa.UniqueConstraint('identification_code', name=op.f('uq_bulk_identifications_identification_code'))
    )
    with op.batch_alter_table('bulk_identifications', schema=None) as batch_op:
        batch_op.create_index('ix_bulk_identifications_work', ['operator_inn', 'status', 'account_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('bulk_identifications', schema=None) as batch_op:
        batch_op.drop_index('ix_bulk_identifications_work')
    op.drop_table('bulk_identifications')
