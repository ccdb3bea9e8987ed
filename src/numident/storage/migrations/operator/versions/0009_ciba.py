"""ciba: backchannel authentication requests and the clients' delivery modes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 09:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import numident.storage.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ciba_clients',
    sa.Column('client_id', sa.String(length=128), nullable=False, comment="the organizer's name"),
    sa.Column('delivery_mode', sa.String(length=8), nullable=False, comment='poll or ping (CIBA Core 5)'),
    sa.Column('notification_endpoint', sa.Text(), nullable=True, comment='backchannel_client_notification_endpoint (ping mode)'),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_ciba_clients'))
    )
    op.create_table('ciba_requests',
    sa.Column('id_hash', sa.String(length=64), nullable=False, comment='SHA-256 of the auth_req_id, hex'),
    sa.Column('client_id', sa.String(length=128), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False, comment='the API scopes the token will carry'),
    sa.Column('purpose', sa.String(length=128), nullable=False, comment='the dpv: purpose asked for'),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('amr', sa.String(length=16), nullable=True, comment='how the subscriber was authenticated, when it was (RFC 8176)'),
    sa.Column('binding_message', sa.Text(), nullable=True),
    sa.Column('delivery_mode', sa.String(length=8), nullable=False),
    sa.Column('notification_endpoint', sa.Text(), nullable=True),
    sa.Column('ping_sealed', sa.Text(), nullable=True, comment='ping mode: the auth_req_id and client_notification_token, sealed'),
    sa.Column('consent_hash', sa.String(length=64), nullable=True, comment="SHA-256 of the secret in the subscriber's approve/deny URL"),
    sa.Column('state', sa.String(length=8), nullable=False, comment='pending, approved or denied'),
    sa.Column('interval', sa.Integer(), nullable=False, comment='seconds the client waits between polls'),
    sa.Column('created_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('last_polled_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('decided_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('used_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id_hash', name=op.f('pk_ciba_requests')),
    sa.UniqueConstraint('consent_hash', name=op.f('uq_ciba_requests_consent_hash'))
    )
    with op.batch_alter_table('ciba_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ciba_requests_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ciba_requests_phone_number'), ['phone_number'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('ciba_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ciba_requests_phone_number'))
        batch_op.drop_index(batch_op.f('ix_ciba_requests_expires_at'))

    op.drop_table('ciba_requests')
    op.drop_table('ciba_clients')
