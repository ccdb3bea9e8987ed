"""The identification path reads identification_requests through its indexes only.

The table takes a row per request and keeps it, so a statement that scans it in full gets
slower with every request ever answered. Every statement the gateway sends about the table
while answering at once, accepting a deferred request, returning a pending repeat, answering
the queue, expiring what is overdue and reading a request back is captured, and its plan is
asked for: SQLite's ``EXPLAIN QUERY PLAN`` must not ``SCAN`` the table (reading a partial
index of the pending requests whole is fine: it holds no answered row), and PostgreSQL's
``EXPLAIN`` with sequential scans priced out must not fall back to one (which it does only
when no index can serve the statement). The indexes it may use are few on purpose
(migration 0015): the partial ones of pending requests serve a statement only when it spells
``status = 'pending'`` as they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from operator_harness import SUBSCRIBERS, Harness, HarnessFactory
from sqlalchemy import Engine, event, text

from numident.core.clock import FakeClock

pytestmark = pytest.mark.anyio

TABLE = "identification_requests"
PARTIAL = ("ix_identification_requests_pending", "uq_identification_requests_pending")
"""Indexes of the pending requests only: reading one of them whole reads no answered row."""


def capture(engine: Engine, table: str = TABLE) -> list[tuple[str, Any]]:
    """Start recording the statements ``engine`` sends that read ``table``."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if table in statement and not executemany and not statement.lstrip().upper().startswith(
                "INSERT"):
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    return seen


def full_scans(engine: Engine, statements: Sequence[tuple[str, Any]]) -> list[str]:
    """The statements whose plan reads every row of the requests table."""
    found = []
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            cursor.execute("SET enable_seqscan = off")
        for statement, parameters in dict(statements).items():
            if engine.dialect.name == "sqlite":
                cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
                plan = [row[3] for row in cursor.fetchall()]
                scanned = any(step.startswith(f"SCAN {TABLE}")
                              and not any(index in step for index in PARTIAL) for step in plan)
            else:
                cursor.execute(f"EXPLAIN {statement}", parameters)
                plan = [row[0] for row in cursor.fetchall()]
                scanned = any(f"Seq Scan on {TABLE}" in step for step in plan)
            if scanned:
                found.append(statement + "\n  " + "\n  ".join(plan))
        conn.rollback()
    return found


async def test_no_statement_of_the_request_path_scans_every_request(
        make_gateway: HarnessFactory) -> None:
    clock = FakeClock()
    h: Harness = await make_gateway(deferred=True, clock=clock)
    h.import_csv(SUBSCRIBERS)
    engine = h.gateway.engine
    # Enough answered requests that a planner weighs an index against a scan.
    add_rows(engine, "INSERT INTO identification_requests (request_id, organizer_id, "
             "phone_number, identification_code, status, result, received_at, answer_due, "
             "answered_at) SELECT 'old-' || n, (SELECT min(id) FROM organizers), "
             "'+79160000000', 'old-' || n, 'answered', 'confirmed', :at, :at, :at "
             "FROM ({numbers}) AS numbers", 2000, clock.now() - timedelta(days=1),
             analyze=TABLE)
    statements = capture(engine)

    deferred = (await h.identify("+79161234567", "user-1")).json()
    repeat = (await h.identify("+79161234567", "user-1")).json()
    assert repeat["requestId"] == deferred["requestId"]
    assert (await h.identify("+79161234568", "user-2")).status_code == 202
    assert await h.gateway.answer_due_batch() is False
    clock.advance(60)
    overdue = (await h.identify("+79161234569", "user-3")).json()
    clock.advance(30 * 60)
    await h.gateway.answer_due_batch()
    polled = await h.client.get(f"/identification/v1/requests/{overdue['requestId']}",
                                headers=await h.auth())
    assert polled.json()["status"] == "expired"

    assert len({s for s, _ in statements}) >= 5, statements
    assert full_scans(engine, statements) == []


def index_conditions(engine: Engine, statements: Sequence[tuple[str, Any]], table: str
                     ) -> list[tuple[str, str]]:
    """(index condition, filter) of every index read of ``table`` in the statements' plans,
    as the planner chooses them now (no ANALYZE: the statistics a new deployment has)."""
    found: list[tuple[str, str]] = []
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        for statement, parameters in dict(statements).items():
            if engine.dialect.name == "sqlite":
                cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
                found += [(row[3], "") for row in cursor.fetchall()
                          if row[3].startswith(f"SEARCH {table} ")]
                continue
            cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            # A bitmap index scan names no relation: its bitmap heap scan (its parent) does.
            nodes = [(cursor.fetchone()[0][0]["Plan"], None)]
            while nodes:
                node, parent = nodes.pop()
                relation = node.get("Relation Name", parent)
                nodes += [(child, relation) for child in node.get("Plans", [])]
                if relation == table and "Index Cond" in node:
                    found.append((f"{node['Index Name']} {node['Index Cond']}",
                                  node.get("Filter", "")))
        conn.rollback()
    return found


async def batch(h: Harness, *items: tuple[str, str]) -> list[dict[str, Any]]:
    """The answers to one batch of (number, code) items."""
    response = await h.client.post(
        "/identification/v1/requests/batch", headers=await h.auth(),
        json={"requests": [{"phoneNumber": n, "identificationCode": c} for n, c in items]})
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


def add_rows(engine: Engine, sql: str, count: int, at: Any, *,
             analyze: str | None = None) -> None:
    """Run ``sql`` (an INSERT ... SELECT over ``n``) for n = 1..count; then, on PostgreSQL,
    ANALYZE the table ``analyze`` (None: the statistics are left as a new table has them)."""
    postgres = engine.dialect.name == "postgresql"
    numbers = ("SELECT generate_series(1, :count) AS n" if postgres
               else "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
                    "WHERE n < :count) SELECT n FROM s")
    with engine.begin() as conn:
        conn.execute(text(sql.format(numbers=numbers)), {"count": count, "at": at})
        if analyze is not None and postgres:
            conn.execute(text(f"ANALYZE {analyze}"))


async def test_the_usages_of_a_round_are_sought_by_code_not_filtered(
        make_gateway: HarnessFactory) -> None:
    """Rule 6 reads the organizer's active usages of a round's codes. With thousands of active
    usages of the organizer and no statistics yet, that read must seek each code in an index,
    not take the organizer as the index condition and filter every usage it has."""
    clock = FakeClock()
    h: Harness = await make_gateway(clock=clock)
    h.import_csv(SUBSCRIBERS)
    engine = h.gateway.engine
    add_rows(engine, "INSERT INTO usages (organizer_id, identification_code, phone_number, "
             "status, since, last_confirmed_at) SELECT (SELECT min(id) FROM organizers), "
             "'old-' || n, '+79160000000', 'active', :at, :at FROM ({numbers}) AS numbers",
             3000, clock.now())
    statements = capture(engine, "usages")

    answers = await batch(h, ("+79161234567", "user-1"), ("+79031112233", "user-2"),
                          ("+79161234567", "user-3"))
    assert [a["result"] for a in answers] == ["confirmed"] * 3

    reads = index_conditions(engine, statements, "usages")
    assert reads, statements
    for condition, filtered in reads:
        assert "identification_code" in condition, reads
        assert "identification_code" not in filtered, reads


async def test_a_pending_repeat_is_sought_by_number_not_filtered(
        make_gateway: HarnessFactory) -> None:
    """The look-up of a pending repeat seeks the round's numbers among thousands of pending
    requests of the organizer. (Without statistics PostgreSQL may still prefer reading the
    pending requests by deadline, as it estimates them few: it is given them here.)"""
    clock = FakeClock()
    h: Harness = await make_gateway(deferred=True, clock=clock)
    h.import_csv(SUBSCRIBERS)
    engine = h.gateway.engine
    add_rows(engine, "INSERT INTO identification_requests (request_id, organizer_id, "
             "phone_number, identification_code, status, received_at, answer_due) "
             "SELECT 'open-' || n, (SELECT min(id) FROM organizers), '+79160000000', "
             "'open-' || n, 'pending', :at, :at FROM ({numbers}) AS numbers",
             3000, clock.now() + timedelta(minutes=20), analyze=TABLE)
    keys = (("+79161234567", "user-1"), ("+79031112233", "user-2"),
            ("+79161234568", "user-3"))
    first = await batch(h, *keys)
    statements = capture(engine)

    repeat = await batch(h, *keys)
    assert [a["requestId"] for a in repeat] == [a["requestId"] for a in first]

    reads = [(condition, filtered) for condition, filtered
             in index_conditions(engine, statements, TABLE)
             if "uq_identification_requests_pending" in condition or "phone_number" in
             condition + filtered]
    assert reads, statements
    for condition, filtered in reads:
        assert "phone_number" in condition, reads
        assert "phone_number" not in filtered, reads
