"""Lifecycle consequences: handlers registered for domain events, on the event's connection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, literal, select

from numident.camara import sim_swap_events
from numident.operator.events import NO_HANDLERS, LifecycleHandlers, LinesEnded, SimSwapped

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
CONNECTION = cast(Connection, object())
"""Handlers get the event's connection as it is; these ones never use it."""


def test_each_handler_gets_the_connection_and_the_event_in_registration_order() -> None:
    """Two handlers of one event run in the order they were registered, with what was told."""
    seen: list[tuple[str, Any, Any]] = []
    handlers = LifecycleHandlers(
        sim_swapped=(lambda conn, e: seen.append(("first", conn, e)),
                     lambda conn, e: seen.append(("second", conn, e))),
        lines_ended=(lambda conn, e: seen.append(("ended", conn, e)),))
    swapped = SimSwapped("+79161234567", AT, AT, "https://gw.example")
    ended = LinesEnded(select(literal("+79161234567")), AT, AT, "https://gw.example")
    handlers.swapped(CONNECTION, swapped)
    handlers.ended(CONNECTION, ended)
    assert seen == [("first", CONNECTION, swapped), ("second", CONNECTION, swapped),
                    ("ended", CONNECTION, ended)]


def test_without_handlers_an_event_changes_nothing_else() -> None:
    """The registry's own consequences only: no handler is there to be called."""
    NO_HANDLERS.swapped(CONNECTION, SimSwapped("+79161234567", AT, AT, "urn:test"))
    NO_HANDLERS.ended(CONNECTION, LinesEnded(select(literal("+79161234567")), AT, AT,
                                             "urn:test"))
    assert (NO_HANDLERS.sim_swapped, NO_HANDLERS.lines_ended) == ((), ())


def test_sim_swap_subscriptions_handle_both_events() -> None:
    """A swap is announced to the line's subscriptions; ended lines end theirs."""
    handlers = sim_swap_events.LIFECYCLE_HANDLERS
    assert list(handlers.sim_swapped) == [sim_swap_events.on_sim_swapped]
    assert list(handlers.lines_ended) == [sim_swap_events.on_lines_ended]
