"""sim swap subscriptions: SIM swap subscriptions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:40:00.000000
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
    op.create_table('sim_swap_subscriptions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('organizer_id', sa.Integer(), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('by_token', sa.Boolean(), nullable=False, comment='the line came from a three-legged token: never shown back or sent'),
    sa.Column('sink', sa.Text(), nullable=False),
    sa.Column('sink_token', sa.Text(), nullable=True, comment="the sink credential's access token, sealed (AES-GCM, v1:...)"),
    sa.Column('sink_token_expires_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('starts_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('max_events', sa.Integer(), nullable=True),
    sa.Column('events_sent', sa.Integer(), nullable=False),
    sa.Column('ended_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('termination_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['organizer_id'], ['organizers.id'], name=op.f('fk_sim_swap_subscriptions_organizer_id_organizers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sim_swap_subscriptions'))
    )
    with op.batch_alter_table('sim_swap_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sim_swap_subscriptions_organizer_id'), ['organizer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sim_swap_subscriptions_phone_number'), ['phone_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sim_swap_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sim_swap_subscriptions_phone_number'))
        batch_op.drop_index(batch_op.f('ix_sim_swap_subscriptions_organizer_id'))

    op.drop_table('sim_swap_subscriptions')
