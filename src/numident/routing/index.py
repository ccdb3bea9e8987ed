"""The in-memory router: sorted numpy arrays searched in bulk or one number at a time.

Ported numbers win over the numbering plan; a number in no range and not ported has no
operator (a result, not an error). The whole plan and 20 million ports take about 300 MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Source = Literal["portability", "plan", "none"]
SOURCES: tuple[Source, ...] = ("none", "plan", "portability")
NONE, PLAN, PORTABILITY = 0, 1, 2


@dataclass(frozen=True)
class Operator:
    key: str
    """The operator's ИНН."""
    name: str


@dataclass(frozen=True)
class RouteResult:
    phone_number: str
    operator: Operator | None
    region: str | None
    source: Source
    plan_range: tuple[int, int] | None = None
    """The numbering plan's range that holds the number (national numbers, first and last)."""


Int64s = npt.NDArray[np.int64]
Int32s = npt.NDArray[np.int32]


@dataclass(frozen=True)
class RouterIndex:
    operators: list[Operator]
    regions: list[str]
    starts: Int64s
    ends: Int64s
    range_operators: Int32s
    range_regions: Int32s
    ported: Int64s
    ported_operators: Int32s

    def route_bulk(self, numbers: Int64s) -> tuple[Int32s, Int32s, npt.NDArray[np.int8]]:
        """Operator index, region index (-1 for none) and source code of each national number.

        The queries are searched in sorted order and the answers put back in the caller's
        order: binary searches over a 160 MB array in random order miss the caches on every
        probe, in sorted order they mostly hit (about four times faster at 20 million ports).
        """
        if len(numbers) > 1 and np.any(numbers[1:] < numbers[:-1]):
            order = np.argsort(numbers, kind="stable")
            operator, region, source = self._route_sorted(numbers[order])
            back = np.empty_like(order)
            back[order] = np.arange(len(order))
            return operator[back], region[back], source[back]
        return self._route_sorted(numbers)

    def _route_sorted(self, numbers: Int64s) -> tuple[Int32s, Int32s, npt.NDArray[np.int8]]:
        slot = np.searchsorted(self.starts, numbers, side="right") - 1
        safe = np.clip(slot, 0, max(len(self.starts) - 1, 0))
        in_plan = (slot >= 0) & (numbers <= self.ends[safe]) if len(self.starts) \
            else np.zeros(len(numbers), dtype=bool)
        at = np.searchsorted(self.ported, numbers)
        safe_at = np.clip(at, 0, max(len(self.ported) - 1, 0))
        is_ported = (self.ported[safe_at] == numbers) if len(self.ported) \
            else np.zeros(len(numbers), dtype=bool)
        plan_op = np.where(in_plan, self.range_operators[safe] if len(self.starts) else -1, -1)
        operator = np.where(is_ported, self.ported_operators[safe_at]
                            if len(self.ported) else -1, plan_op).astype(np.int32)
        region = np.where(in_plan, self.range_regions[safe] if len(self.starts) else -1,
                          -1).astype(np.int32)
        source = np.where(is_ported, PORTABILITY, np.where(in_plan, PLAN, NONE)).astype(np.int8)
        return operator, region, source

    def route_national(self, phone_number: str, national: int) -> RouteResult:
        """The route of one number (``national`` = the ten digits after +7)."""
        region: str | None = None
        operator: Operator | None = None
        plan_range: tuple[int, int] | None = None
        slot = int(np.searchsorted(self.starts, national, side="right")) - 1
        if slot >= 0 and national <= self.ends[slot]:
            region = self.regions[self.range_regions[slot]]
            operator = self.operators[self.range_operators[slot]]
            plan_range = (int(self.starts[slot]), int(self.ends[slot]))
        at = int(np.searchsorted(self.ported, national))
        if at < len(self.ported) and self.ported[at] == national:
            return RouteResult(phone_number, self.operators[self.ported_operators[at]], region,
                               "portability", plan_range)
        return RouteResult(phone_number, operator, region, "plan" if operator else "none",
                           plan_range)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.starts, self.ends, self.range_operators,
                                      self.range_regions, self.ported, self.ported_operators))
