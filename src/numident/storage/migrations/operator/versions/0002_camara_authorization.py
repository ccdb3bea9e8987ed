"""camara authorization

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 06:36:53.231927
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
    op.create_table('authorization_codes',
    sa.Column('code_hash', sa.String(length=64), nullable=False, comment='SHA-256 of the code, hex'),
    sa.Column('client_id', sa.String(length=128), nullable=False),
    sa.Column('redirect_uri', sa.Text(), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('authentication', sa.String(length=16), nullable=False),
    sa.Column('code_challenge', sa.String(length=128), nullable=True, comment='PKCE S256 challenge (RFC 7636), when the client sent one'),
    sa.Column('expires_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('used_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('code_hash', name=op.f('pk_authorization_codes'))
    )
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_codes_expires_at'), ['expires_at'], unique=False)

    op.create_table('network_sessions',
    sa.Column('session_id', sa.String(length=128), nullable=False, comment='the connection as the network sees it: client address or enrichment id'),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('authentication', sa.String(length=16), nullable=False, comment='how the network knows the line: network, sim, or otp'),
    sa.Column('updated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('session_id', name=op.f('pk_network_sessions'))
    )
    with op.batch_alter_table('organizers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.Text(), server_default='identification', nullable=False, comment='space-separated OAuth2 scopes the organizer may be granted'))
        batch_op.add_column(sa.Column('redirect_uris', sa.Text(), server_default='', nullable=False, comment='space-separated redirect URIs of the authorization-code flow'))



def downgrade() -> None:
    with op.batch_alter_table('organizers', schema=None) as batch_op:
        batch_op.drop_column('redirect_uris')
        batch_op.drop_column('scopes')

    op.drop_table('network_sessions')
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_codes_expires_at'))

    op.drop_table('authorization_codes')
