"""camara registry: holder attributes and contract types (KYC Match, Tenure)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 06:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import numident.storage.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

KEYED_DIGEST = 'HMAC-SHA256 (holder key) of column, line and normal form, hex; never the value'


def upgrade() -> None:
    op.create_table('holders',
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('contract_id', sa.String(length=64), nullable=False, comment='the contract these attributes describe'),
    sa.Column('activated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True, comment="the start of that contract's holder, as exported with the attributes"),
    sa.Column('contract_type', sa.String(length=8), nullable=True, comment='PAYG, PAYM or Business'),
    sa.Column('id_document', sa.String(length=64), nullable=True, comment=KEYED_DIGEST),
    sa.Column('id_document_type', sa.String(length=64), nullable=True, comment=KEYED_DIGEST),
    sa.Column('id_document_expiry_date', sa.String(length=64), nullable=True, comment=KEYED_DIGEST),
    sa.Column('bank_account_number', sa.String(length=64), nullable=True, comment=KEYED_DIGEST),
    sa.Column('name', sa.String(length=256), nullable=True),
    sa.Column('given_name', sa.String(length=100), nullable=True),
    sa.Column('family_name', sa.String(length=150), nullable=True),
    sa.Column('name_kana_hankaku', sa.String(length=256), nullable=True),
    sa.Column('name_kana_zenkaku', sa.String(length=256), nullable=True),
    sa.Column('middle_names', sa.String(length=100), nullable=True),
    sa.Column('family_name_at_birth', sa.String(length=150), nullable=True),
    sa.Column('address', sa.String(length=256), nullable=True),
    sa.Column('street_name', sa.String(length=150), nullable=True),
    sa.Column('street_number', sa.String(length=20), nullable=True),
    sa.Column('postal_code', sa.String(length=64), nullable=True, comment=KEYED_DIGEST),
    sa.Column('region', sa.String(length=100), nullable=True),
    sa.Column('locality', sa.String(length=100), nullable=True),
    sa.Column('country', sa.String(length=64), nullable=True, comment=KEYED_DIGEST),
    sa.Column('house_number_extension', sa.String(length=20), nullable=True),
    sa.Column('birthdate', sa.String(length=64), nullable=True, comment=KEYED_DIGEST),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('gender', sa.String(length=64), nullable=True, comment=KEYED_DIGEST),
    sa.Column('city_of_birth', sa.String(length=100), nullable=True),
    sa.Column('country_of_birth', sa.String(length=64), nullable=True, comment=KEYED_DIGEST),
    sa.Column('nationality', sa.String(length=64), nullable=True, comment=KEYED_DIGEST),
    sa.Column('holder_key_id', sa.String(length=16), nullable=True, comment="the id of the holder key of this row's HMAC digests"),
    sa.Column('updated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('phone_number', name=op.f('pk_holders'))
    )


def downgrade() -> None:
    op.drop_table('holders')
