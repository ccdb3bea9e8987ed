"""openid nonce: the OpenID Connect nonce of an authorization code

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01 09:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('authorization_codes') as batch_op:
        batch_op.add_column(sa.Column('nonce', sa.Text(), nullable=True, comment='OpenID Connect nonce of the authorization request, for the ID token'))


def downgrade() -> None:
    with op.batch_alter_table('authorization_codes') as batch_op:
        batch_op.drop_column('nonce')
