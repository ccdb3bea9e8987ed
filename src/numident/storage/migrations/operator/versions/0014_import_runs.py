"""import runs, and requests by time: the history of billing export imports and an
index on identification_requests.received_at, for the console

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-01 12:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import numident.storage.types

revision = '0014'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('import_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('started_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('file_name', sa.Text(), nullable=False, comment="the file's name, without its folder"),
    sa.Column('outcome', sa.String(length=16), nullable=False, comment='loaded, or refused (nothing written)'),
    sa.Column('partial', sa.Boolean(), nullable=False, comment='--partial: bad rows set aside'),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('inserted', sa.BigInteger(), nullable=False),
    sa.Column('updated', sa.BigInteger(), nullable=False),
    sa.Column('unchanged', sa.BigInteger(), nullable=False),
    sa.Column('rejected', sa.BigInteger(), nullable=False, comment='bad rows: set aside (partial) or the reason of a refusal'),
    sa.Column('notices', sa.BigInteger(), nullable=False),
    sa.Column('problem', sa.Text(), nullable=True, comment='why a refused import was refused'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_runs'))
    )
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_runs_started_at'), ['started_at'], unique=False)
    with op.batch_alter_table('identification_requests', schema=None) as batch_op:
        batch_op.create_index('ix_identification_requests_received_at', ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identification_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_identification_requests_received_at')
    with op.batch_alter_table('import_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_runs_started_at'))
    op.drop_table('import_runs')
