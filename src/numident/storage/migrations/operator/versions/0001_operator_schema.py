"""operator schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 02:59:16.245004
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
    op.create_table('audit',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=True),
    sa.Column('identification_code', sa.String(length=128), nullable=True),
    sa.Column('request_id', sa.String(length=36), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit'))
    )
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_phone_number'), ['phone_number'], unique=False)

    op.create_table('lifecycle_events',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('new_contract_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_lifecycle_events'))
    )
    with op.batch_alter_table('lifecycle_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lifecycle_events_phone_number'), ['phone_number'], unique=False)

    op.create_table('organizers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('notice_url', sa.Text(), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False, comment='public JWK (JSON)'),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizers')),
    sa.UniqueConstraint('name', name=op.f('uq_organizers_name'))
    )
    op.create_table('outbox',
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
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_owner'), ['owner'], unique=False)
        batch_op.create_index('ix_outbox_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('subscriber_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('contract_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=True),
    sa.Column('change', sa.String(length=32), nullable=False),
    sa.Column('occurred_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriber_history'))
    )
    with op.batch_alter_table('subscriber_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscriber_history_phone_number'), ['phone_number'], unique=False)

    op.create_table('subscribers',
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('contract_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('activated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sim_changed_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('phone_number', name=op.f('pk_subscribers'))
    )
    op.create_table('used_assertions',
    sa.Column('jti', sa.String(length=255), nullable=False),
    sa.Column('expires_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_used_assertions'))
    )
    with op.batch_alter_table('used_assertions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_used_assertions_expires_at'), ['expires_at'], unique=False)

    op.create_table('identification_requests',
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('organizer_id', sa.Integer(), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('identification_code', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('result', sa.String(length=16), nullable=True),
    sa.Column('received_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('answer_due', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('answered_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['organizer_id'], ['organizers.id'], name=op.f('fk_identification_requests_organizer_id_organizers')),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_identification_requests'))
    )
    with op.batch_alter_table('identification_requests', schema=None) as batch_op:
        batch_op.create_index('ix_identification_requests_key', ['organizer_id', 'phone_number', 'identification_code'], unique=False)
        batch_op.create_index('ix_identification_requests_pending', ['status', 'answer_due'], unique=False)

    op.create_table('usages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('organizer_id', sa.Integer(), nullable=False),
    sa.Column('identification_code', sa.String(length=128), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('since', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_confirmed_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['organizer_id'], ['organizers.id'], name=op.f('fk_usages_organizer_id_organizers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usages'))
    )
    with op.batch_alter_table('usages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usages_phone_number'), ['phone_number'], unique=False)
        batch_op.create_index('uq_usages_active', ['organizer_id', 'identification_code', 'phone_number'], unique=True)

    forbid_changes(op, 'audit')


def downgrade() -> None:
    allow_changes(op, 'audit')
    with op.batch_alter_table('usages', schema=None) as batch_op:
        batch_op.drop_index('uq_usages_active')
        batch_op.drop_index(batch_op.f('ix_usages_phone_number'))

    op.drop_table('usages')
    with op.batch_alter_table('identification_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_identification_requests_pending')
        batch_op.drop_index('ix_identification_requests_key')

    op.drop_table('identification_requests')
    with op.batch_alter_table('used_assertions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_used_assertions_expires_at'))

    op.drop_table('used_assertions')
    op.drop_table('subscribers')
    with op.batch_alter_table('subscriber_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscriber_history_phone_number'))

    op.drop_table('subscriber_history')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_outbox_owner'))

    op.drop_table('outbox')
    op.drop_table('organizers')
    with op.batch_alter_table('lifecycle_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lifecycle_events_phone_number'))

    op.drop_table('lifecycle_events')
    with op.batch_alter_table('audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_phone_number'))

    op.drop_table('audit')
