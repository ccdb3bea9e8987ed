"""The two schemas: one database per process kind.

An operator gateway's database holds ``operator_metadata``; a messenger service's database holds
``messenger_metadata`` (accounts, routing tables). Each has its own Alembic history.
Tables are declared with SQLAlchemy Core in the package that owns them and registered on one
of these two objects.
"""

from __future__ import annotations

from sqlalchemy import MetaData

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

operator_metadata = MetaData(naming_convention=NAMING)
messenger_metadata = MetaData(naming_convention=NAMING)
