"""fewer request indexes: the pending ones indexed only while pending, no index by key

ix_identification_requests_key (organizer, number, code over every request ever received)
served only the look-up of a pending repeat, which the partial unique index of pending
requests answers; ix_identification_requests_pending (status, answer_due) becomes a partial
index of the pending requests by deadline. An answered request then leaves two index
entries behind (its id and its time) instead of four.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.drop_index('ix_identification_requests_key', table_name='identification_requests')
    op.drop_index('ix_identification_requests_pending', table_name='identification_requests')
    op.create_index('ix_identification_requests_pending', 'identification_requests',
                    ['answer_due'], unique=False, sqlite_where=PENDING,
                    postgresql_where=PENDING)


def downgrade() -> None:
    op.drop_index('ix_identification_requests_pending', table_name='identification_requests')
    op.create_index('ix_identification_requests_pending', 'identification_requests',
                    ['status', 'answer_due'], unique=False)
    op.create_index('ix_identification_requests_key', 'identification_requests',
                    ['organizer_id', 'phone_number', 'identification_code'], unique=False)
