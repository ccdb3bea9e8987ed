"""codes by flash and voice call; send budgets, the range circuit and the possession audit

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import numident.storage.types
from numident.storage.append_only import allow_changes, forbid_changes

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('possession_challenges') as batch:
        batch.alter_column('code_hash', existing_type=sa.String(length=64), nullable=True,
                           comment='HMAC-SHA256, never the code; none while a flash call is '
                           'being placed', existing_comment='HMAC-SHA256, never the code')
        batch.alter_column('status', existing_type=sa.String(length=16),
                           existing_nullable=False, comment='sending | open | used | burnt',
                           existing_comment='open | used | burnt')
        batch.add_column(sa.Column('channel', sa.String(length=16), nullable=True,
                                   comment='sms | flash_call | voice_call'))
        batch.add_column(sa.Column('send_id', sa.BigInteger(), nullable=True,
                                   comment='its code_sends row'))
    op.create_table('code_sends',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('plan_range', sa.String(length=32), nullable=True, comment="the numbering plan's range"),
    sa.Column('region', sa.String(length=256), nullable=True),
    sa.Column('client_address', sa.String(length=64), nullable=True, comment='IPv4, or an IPv6 /64'),
    sa.Column('channel', sa.String(length=16), nullable=True, comment='the channel that carried the code'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='sending | sent | failed'),
    sa.Column('confirmed_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_code_sends'))
    )
    with op.batch_alter_table('code_sends') as batch_op:
        batch_op.create_index('ix_code_sends_at', ['at'], unique=False)
        batch_op.create_index('ix_code_sends_number', ['phone_number', 'at'], unique=False)
        batch_op.create_index('ix_code_sends_range', ['plan_range', 'at'], unique=False)
        batch_op.create_index('ix_code_sends_region', ['region', 'at'], unique=False)
        batch_op.create_index('ix_code_sends_address', ['client_address', 'at'], unique=False)
    op.create_table('possession_audit',
    sa.Column('id', _ID, autoincrement=True, nullable=False),
    sa.Column('at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('client_address', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('event', sa.String(length=16), nullable=False, comment='sent | failed | refused'),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_possession_audit'))
    )
    with op.batch_alter_table('possession_audit') as batch_op:
        batch_op.create_index(batch_op.f('ix_possession_audit_account_id'), ['account_id'],
                              unique=False)
    forbid_changes(op, 'possession_audit')


def downgrade() -> None:
    allow_changes(op, 'possession_audit')
    op.drop_table('possession_audit')
    op.drop_table('code_sends')
    with op.batch_alter_table('possession_challenges') as batch:
        batch.drop_column('send_id')
        batch.drop_column('channel')
        batch.alter_column('status', existing_type=sa.String(length=16),
                           existing_nullable=False, comment='open | used | burnt',
                           existing_comment='sending | open | used | burnt')
        batch.alter_column('code_hash', existing_type=sa.String(length=64), nullable=False,
                           comment='HMAC-SHA256, never the code',
                           existing_comment='HMAC-SHA256, never the code; none while a flash '
                           'call is being placed')
