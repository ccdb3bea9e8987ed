"""organizer limits: per-organizer rate limit and daily quota, items counted per day

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organizers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_limit', sa.Integer(), nullable=True, comment="identification items per second; NULL: the gateway's default"))
        batch_op.add_column(sa.Column('daily_quota', sa.Integer(), nullable=True, comment="identification items per UTC day; NULL: the gateway's default"))
    op.create_table('organizer_daily_items',
    sa.Column('organizer_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False, comment='UTC day'),
    sa.Column('item_count', sa.BigInteger(), nullable=False, comment='identification items accepted that day, counted against the daily quota'),
    sa.ForeignKeyConstraint(['organizer_id'], ['organizers.id'], name=op.f('fk_organizer_daily_items_organizer_id_organizers')),
    sa.PrimaryKeyConstraint('organizer_id', 'day', name=op.f('pk_organizer_daily_items'))
    )


def downgrade() -> None:
    op.drop_table('organizer_daily_items')
    with op.batch_alter_table('organizers', schema=None) as batch_op:
        batch_op.drop_column('daily_quota')
        batch_op.drop_column('rate_limit')
