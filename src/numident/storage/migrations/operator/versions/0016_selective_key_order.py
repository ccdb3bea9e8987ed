"""usage and pending-request keys lead with their selective column

uq_usages_active_code (organizer, code), uq_usages_active (organizer, code, number) and
uq_identification_requests_pending (organizer, number, code) all led with the organizer, of
which a gateway has a handful. Given a round's codes (or numbers) and its organizer, a
planner without statistics (PostgreSQL before the table's first ANALYZE: a new deployment's
first minute, the first identification of an existing user base) took the organizer as the
index condition and filtered the codes, reading every active usage of the organizer for each
round. Led by the code (or the number), every use of these indexes seeks what it looks for,
whatever the statistics say. The keys are the same sets of columns: uniqueness and the
upserts' conflict targets are unchanged.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 19:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

ACTIVE = sa.text("status = 'active'")
PENDING = sa.text("status = 'pending'")


def _rebuild(name: str, table: str, columns: Sequence[str], where: sa.TextClause | None
             ) -> None:
    op.drop_index(name, table_name=table)
    op.create_index(name, table, list(columns), unique=True, sqlite_where=where,
                    postgresql_where=where)


def upgrade() -> None:
    _rebuild('uq_usages_active_code', 'usages', ['identification_code', 'organizer_id'],
             ACTIVE)
    _rebuild('uq_usages_active', 'usages',
             ['identification_code', 'organizer_id', 'phone_number'], None)
    _rebuild('uq_identification_requests_pending', 'identification_requests',
             ['phone_number', 'identification_code', 'organizer_id'], PENDING)


def downgrade() -> None:
    _rebuild('uq_usages_active_code', 'usages', ['organizer_id', 'identification_code'],
             ACTIVE)
    _rebuild('uq_usages_active', 'usages',
             ['organizer_id', 'identification_code', 'phone_number'], None)
    _rebuild('uq_identification_requests_pending', 'identification_requests',
             ['organizer_id', 'phone_number', 'identification_code'], PENDING)
