"""Timestamps written at driver level (``timestamp_binder``) as a Core statement writes them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from numident.storage.database import create_database_engine
from numident.storage.dialect import driver_sql, timestamp_binder
from numident.storage.types import UtcDateTime

metadata = MetaData()
stamps = Table("stamps", metadata, Column("id", Integer, primary_key=True),
               Column("at", UtcDateTime, nullable=False))


def test_a_driver_level_timestamp_is_stored_as_core_stores_it(database_url: str) -> None:
    """The same instant, bound by Core and by the binder, is the same stored value: equal in
    SQL (not only once read back), for a whole second and for one with microseconds."""
    engine = create_database_engine(database_url)
    try:
        metadata.create_all(engine)
        whole = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
        fraction = datetime(2026, 11, 30, 12, 0, 0, 5, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(insert(stamps), [{"id": 1, "at": whole}, {"id": 2, "at": fraction}])
            bind = timestamp_binder(conn, stamps.c.at)
            conn.exec_driver_sql(driver_sql(conn, "INSERT INTO stamps (id, at) VALUES (?, ?)"),
                                 [(3, bind(whole)), (4, bind(fraction))])
            pairs = conn.execute(text("SELECT a.id, b.id FROM stamps a JOIN stamps b "
                                      "ON a.at = b.at AND a.id < b.id ORDER BY a.id")).all()
            read = conn.scalars(select(stamps.c.at).order_by(stamps.c.id)).all()
        assert [tuple(pair) for pair in pairs] == [(1, 3), (2, 4)]
        assert read == [whole, fraction, whole, fraction]
    finally:
        engine.dispose()
