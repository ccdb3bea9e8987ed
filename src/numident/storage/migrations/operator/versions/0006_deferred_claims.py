"""deferred claims: a lease on pending requests, one active usage per code, replica rates

Revision ID: 0006
Revises: 0009
Create Date: 2026-12-01 09:30:00.000000

Before the unique index is built, surplus active usages of one (organizer, code) are ended as
``withdrawn``/``number_changed``, keeping the one confirmed last: the state the rules would have
left had the confirmations been serialised. Likewise a pending request repeated beside an
earlier pending one (accepted by two replicas at once) is set ``expired``, the earliest staying
in the queue: a poll of the repeat then tells the organizer to send it again, which returns the
earliest.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import numident.storage.types

revision = '0006'
down_revision = '0009'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status = 'active'")
PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table('deferred_replicas',
    sa.Column('replica_id', sa.String(length=36), nullable=False),
    sa.Column('answers_per_second', sa.Float(), nullable=False, comment="the replica's measured drain rate of deferred requests"),
    sa.Column('valid_until', numident.storage.types.UtcDateTime(timezone=True), nullable=False, comment='the rate counts for admission until then; a live replica renews it'),
    sa.PrimaryKeyConstraint('replica_id', name=op.f('pk_deferred_replicas'))
    )
    with op.batch_alter_table('identification_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_until', numident.storage.types.UtcDateTime(timezone=True), nullable=True, comment='a pending request is being checked by one replica until then'))
    op.execute("""
        UPDATE usages SET status = 'withdrawn', ended_at = last_confirmed_at,
                          end_reason = 'number_changed'
        WHERE status = 'active' AND EXISTS (
            SELECT 1 FROM usages AS later
            WHERE later.organizer_id = usages.organizer_id
              AND later.identification_code = usages.identification_code
              AND later.status = 'active'
              AND (later.last_confirmed_at > usages.last_confirmed_at
                   OR (later.last_confirmed_at = usages.last_confirmed_at
                       AND later.id > usages.id)))
    """)
    op.execute("""
        UPDATE identification_requests SET status = 'expired'
        WHERE status = 'pending' AND EXISTS (
            SELECT 1 FROM identification_requests AS earlier
            WHERE earlier.organizer_id = identification_requests.organizer_id
              AND earlier.phone_number = identification_requests.phone_number
              AND earlier.identification_code = identification_requests.identification_code
              AND earlier.status = 'pending'
              AND (earlier.received_at < identification_requests.received_at
                   OR (earlier.received_at = identification_requests.received_at
                       AND earlier.request_id < identification_requests.request_id)))
    """)
    with op.batch_alter_table('identification_requests', schema=None) as batch_op:
        batch_op.create_index('uq_identification_requests_pending', ['organizer_id', 'phone_number', 'identification_code'], unique=True, sqlite_where=PENDING, postgresql_where=PENDING)
    with op.batch_alter_table('usages', schema=None) as batch_op:
        batch_op.create_index('uq_usages_active_code', ['organizer_id', 'identification_code'], unique=True, sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    with op.batch_alter_table('usages', schema=None) as batch_op:
        batch_op.drop_index('uq_usages_active_code', sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    with op.batch_alter_table('identification_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_identification_requests_pending', sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.drop_column('lease_until')
    op.drop_table('deferred_replicas')
