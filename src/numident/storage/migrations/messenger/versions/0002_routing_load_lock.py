"""routing load lock

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import numident.storage.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('routing_load_lock',
    sa.Column('name', sa.String(length=16), nullable=False),
    sa.Column('holder', sa.String(length=36), nullable=True, comment="the lease holder's token; NULL: free"),
    sa.Column('purpose', sa.Text(), nullable=True, comment='what the holder loads, for waiters'),
    sa.Column('acquired_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('expires_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('fence', sa.Integer(), nullable=False, comment="grows with every acquisition; a full load's generation"),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_routing_load_lock'))
    )


def downgrade() -> None:
    op.drop_table('routing_load_lock')
