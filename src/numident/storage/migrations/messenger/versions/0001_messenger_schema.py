"""messenger schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 03:42:08.260762
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import numident.storage.types
from numident.storage.append_only import allow_changes, forbid_changes

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('account_audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.Column('at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('from_state', sa.String(length=32), nullable=True),
    sa.Column('to_state', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('phone_number', sa.String(length=16), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_audit'))
    )
    with op.batch_alter_table('account_audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_audit_account_id'), ['account_id'], unique=False)

    op.create_table('accounts',
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('operator_inn', sa.String(length=16), nullable=True),
    sa.Column('operator_name', sa.String(length=256), nullable=True),
    sa.Column('identification_code', sa.String(length=128), nullable=False, comment='opaque, random, new for every phone number'),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('attempt_id', sa.String(length=36), nullable=True, comment='the identification in force'),
    sa.Column('created_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sim_swapped_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('identification_code', name=op.f('uq_accounts_identification_code'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index('ix_accounts_operator_code', ['operator_inn', 'identification_code'], unique=False)

    op.create_table('identification_attempts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=128), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('identification_code', sa.String(length=128), nullable=False),
    sa.Column('operator_inn', sa.String(length=16), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=True, comment="the gateway's, once accepted"),
    sa.Column('status', sa.String(length=16), nullable=False, comment='open | finished | superseded'),
    sa.Column('outcome', sa.String(length=16), nullable=True, comment='identified | refused | unanswered, once finished'),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('started_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('first_sent_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('answer_due', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('next_poll_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('polls', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('finished_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identification_attempts'))
    )
    with op.batch_alter_table('identification_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identification_attempts_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_identification_attempts_open', ['status', 'next_poll_at'], unique=False)

    op.create_table('messenger_outbox',
    sa.Column('id', sa.String(length=64), nullable=False, comment='the event id; receivers dedupe by it'),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=128), nullable=True),
    sa.Column('destination', sa.Text(), nullable=False),
    sa.Column('content_type', sa.String(length=128), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('requeues', sa.Integer(), nullable=False),
    sa.Column('created_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('requeued_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('next_attempt_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('lease_until', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messenger_outbox'))
    )
    with op.batch_alter_table('messenger_outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_messenger_outbox_owner'), ['owner'], unique=False)
        batch_op.create_index('ix_messenger_outbox_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('possession_challenges',
    sa.Column('account_id', sa.String(length=128), nullable=False, comment='one open challenge each'),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False, comment='HMAC-SHA256, never the code'),
    sa.Column('status', sa.String(length=16), nullable=False, comment='open | used | burnt'),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_sent_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_possession_challenges'))
    )
    op.create_table('received_notices',
    sa.Column('operator_inn', sa.String(length=16), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False, comment='the CloudEvent id'),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('identification_code', sa.String(length=128), nullable=True),
    sa.Column('phone_number', sa.String(length=16), nullable=True),
    sa.Column('occurred_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('received_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('accounts_affected', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('operator_inn', 'event_id', name=op.f('pk_received_notices'))
    )
    op.create_table('routing_aliases',
    sa.Column('alias', sa.String(length=80), nullable=False, comment='kind:value, e.g. owner:mMTS, mnc:01'),
    sa.Column('inn', sa.String(length=12), nullable=False),
    sa.PrimaryKeyConstraint('alias', name=op.f('pk_routing_aliases'))
    )
    op.create_table('routing_datasets',
    sa.Column('kind', sa.String(length=8), nullable=False, comment='plan or ports'),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('rows', sa.BigInteger(), nullable=False),
    sa.Column('loaded_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('kind', name=op.f('pk_routing_datasets'))
    )
    op.create_table('routing_operators',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('inn', sa.String(length=12), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_operators')),
    sa.UniqueConstraint('inn', name=op.f('uq_routing_operators_inn'))
    )
    op.create_table('routing_plan',
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('first', sa.BigInteger(), nullable=False),
    sa.Column('last', sa.BigInteger(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('region', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('generation', 'first', name=op.f('pk_routing_plan'))
    )
    op.create_table('routing_ports',
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('number', sa.BigInteger(), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('ported_at', sa.BigInteger(), nullable=True, comment='unix seconds'),
    sa.PrimaryKeyConstraint('generation', 'number', name=op.f('pk_routing_ports'))
    )
    forbid_changes(op, 'account_audit')


def downgrade() -> None:
    allow_changes(op, 'account_audit')
    op.drop_table('routing_ports')
    op.drop_table('routing_plan')
    op.drop_table('routing_operators')
    op.drop_table('routing_datasets')
    op.drop_table('routing_aliases')
    op.drop_table('received_notices')
    op.drop_table('possession_challenges')
    with op.batch_alter_table('messenger_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_messenger_outbox_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_messenger_outbox_owner'))

    op.drop_table('messenger_outbox')
    with op.batch_alter_table('identification_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_identification_attempts_open')
        batch_op.drop_index(batch_op.f('ix_identification_attempts_account_id'))

    op.drop_table('identification_attempts')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_accounts_operator_code')

    op.drop_table('accounts')
    with op.batch_alter_table('account_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_audit_account_id'))

    op.drop_table('account_audit')
