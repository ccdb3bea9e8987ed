"""chunked registry imports: import journal and staged rows

Revision ID: 0010
Revises: 0012
Create Date: 2026-12-01 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import numident.storage.types

revision = '0010'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('subscriber_import_holders',
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('phone_number', sa.String(length=16), nullable=True),
    sa.Column('contract_id', sa.String(length=64), nullable=True),
    sa.Column('activated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('contract_type', sa.String(length=8), nullable=True),
    sa.Column('id_document', sa.String(length=64), nullable=True),
    sa.Column('id_document_type', sa.String(length=64), nullable=True),
    sa.Column('id_document_expiry_date', sa.String(length=64), nullable=True),
    sa.Column('bank_account_number', sa.String(length=64), nullable=True),
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
    sa.Column('postal_code', sa.String(length=64), nullable=True),
    sa.Column('region', sa.String(length=100), nullable=True),
    sa.Column('locality', sa.String(length=100), nullable=True),
    sa.Column('country', sa.String(length=64), nullable=True),
    sa.Column('house_number_extension', sa.String(length=20), nullable=True),
    sa.Column('birthdate', sa.String(length=64), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('gender', sa.String(length=64), nullable=True),
    sa.Column('city_of_birth', sa.String(length=100), nullable=True),
    sa.Column('country_of_birth', sa.String(length=64), nullable=True),
    sa.Column('nationality', sa.String(length=64), nullable=True),
    sa.Column('holder_key_id', sa.String(length=16), nullable=True),
    sa.Column('updated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('import_id', 'seq', name=op.f('pk_subscriber_import_holders'))
    )
    op.create_table('subscriber_import_rows',
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False, comment='1.. in phone_number order'),
    sa.Column('phone_number', sa.String(length=16), nullable=False),
    sa.Column('contract_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('activated_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('import_id', 'seq', name=op.f('pk_subscriber_import_rows'))
    )
    op.create_table('subscriber_imports',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False, comment='staging (rows being written), switching (being applied) or done'),
    sa.Column('imported_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False, comment="the import's time: of its registry rows, history and notices"),
    sa.Column('notice_source', sa.Text(), nullable=False),
    sa.Column('has_holders', sa.Boolean(), nullable=False),
    sa.Column('history_mark', sa.BigInteger(), nullable=False, comment='the last subscriber_history id when the import began: a lifecycle event recorded after it is newer than the export'),
    sa.Column('row_count', sa.Integer(), nullable=False, comment='rows staged'),
    sa.Column('applied', sa.Integer(), nullable=False, comment='rows switched in so far, in seq order'),
    sa.Column('inserted', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('superseded', sa.Integer(), nullable=False, comment='rows left as a lifecycle event recorded during the import made them'),
    sa.Column('notices', sa.Integer(), nullable=False),
    sa.Column('heartbeat_at', numident.storage.types.UtcDateTime(timezone=True), nullable=False, comment='when the process writing or applying it last made progress'),
    sa.Column('finished_at', numident.storage.types.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriber_imports'))
    )
    with op.batch_alter_table('subscriber_imports', schema=None) as batch_op:
        batch_op.create_index('ix_subscriber_imports_state', ['state', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('subscriber_imports', schema=None) as batch_op:
        batch_op.drop_index('ix_subscriber_imports_state')

    op.drop_table('subscriber_imports')
    op.drop_table('subscriber_import_rows')
    op.drop_table('subscriber_import_holders')
