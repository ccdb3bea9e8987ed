"""The router's index: ports win, gaps have no operator, bulk and single agree."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from numident.routing.index import SOURCES, Operator, RouterIndex

MTS, BEELINE = Operator("7740000076", "МТС"), Operator("7713076301", "Билайн")
INDEX = RouterIndex(
    operators=[MTS, BEELINE], regions=["Москва", "Петербург"],
    starts=np.array([9160000000, 9170000000], dtype=np.int64),
    ends=np.array([9169999999, 9179999999], dtype=np.int64),
    range_operators=np.array([0, 1], dtype=np.int32),
    range_regions=np.array([0, 1], dtype=np.int32),
    ported=np.array([9161234567, 9991234567], dtype=np.int64),
    ported_operators=np.array([1, 0], dtype=np.int32))


def test_ported_number_wins_over_its_plan_range() -> None:
    """A number of MTS's range ported to Beeline routes to Beeline, keeping its region."""
    result = INDEX.route_national("+79161234567", 9161234567)
    assert (result.operator, result.region, result.source) == (BEELINE, "Москва", "portability")


def test_number_in_a_range_routes_by_the_plan() -> None:
    """An unported number routes to its range's operator."""
    result = INDEX.route_national("+79171234567", 9171234567)
    assert (result.operator, result.region, result.source) == (BEELINE, "Петербург", "plan")


def test_number_outside_every_range_has_no_operator() -> None:
    """A gap in the plan is a clear 'no operator' result."""
    result = INDEX.route_national("+79181234567", 9181234567)
    assert (result.operator, result.region, result.source) == (None, None, "none")


def test_ported_number_outside_the_plan_still_routes() -> None:
    """Portability data alone is enough to route a number."""
    result = INDEX.route_national("+79991234567", 9991234567)
    assert (result.operator, result.source) == (MTS, "portability")


def test_empty_index_routes_nothing() -> None:
    """Before any data is loaded every number has no operator."""
    empty = RouterIndex([], [], *(np.empty(0, dtype=t) for t in
                                  (np.int64, np.int64, np.int32, np.int32, np.int64, np.int32)))
    assert empty.route_national("+79161234567", 9161234567).source == "none"


@given(st.lists(st.integers(min_value=9150000000, max_value=9999999999), max_size=200))
def test_bulk_routing_equals_single_routing(numbers: list[int]) -> None:
    """route_bulk gives, number by number, what route_national gives."""
    operators, regions, sources = INDEX.route_bulk(np.array(numbers, dtype=np.int64))
    for i, number in enumerate(numbers):
        single = INDEX.route_national(f"+7{number}", number)
        assert (INDEX.operators[operators[i]] if operators[i] >= 0 else None) == single.operator
        assert (INDEX.regions[regions[i]] if regions[i] >= 0 else None) == single.region
        assert SOURCES[sources[i]] == single.source
