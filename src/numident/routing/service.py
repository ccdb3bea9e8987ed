"""Routing as the messenger uses it: imports, and the current operator of a number.

The index is built from the database's active data on first use and rebuilt when a load or an
increment changed it (checked at most every ``refresh_seconds``); the new index replaces the old
in one reference assignment, so a lookup always sees one complete dataset, never a mixture.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from numident.core.numbers import national_significant, normalize
from numident.errors import InvalidInput
from numident.routing.index import SOURCES, RouteResult, RouterIndex
from numident.routing.lock import Waiting
from numident.routing.plan import read_plan
from numident.routing.ports import Kind, kind_of, read_ports
from numident.routing.store import Guard, Hook, SqlRoutingStore

RUSSIA = frozenset({"RU"})
Progress = Callable[[int], None]


@dataclass(frozen=True)
class OperatorAliases:
    """How the portability data names an operator besides its ИНН."""

    owner_ids: tuple[str, ...] = ()
    mncs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportReport:
    kind: str
    rows: int
    operators: int
    generation: int
    seconds: float

    def __str__(self) -> str:
        return (f"{self.rows} {self.kind} row(s), {self.operators} operator(s), "
                f"generation {self.generation}, {self.seconds:.1f} s")


class RoutingService:
    def __init__(self, engine: object, aliases: Mapping[str, OperatorAliases] | None = None,
                 *, refresh_seconds: float = 1.0, load_wait_seconds: float = 300.0,
                 max_shrink_percent: float = 10.0, lease_seconds: float = 60.0) -> None:
        from sqlalchemy import Engine

        assert isinstance(engine, Engine)
        self.store = SqlRoutingStore(engine, lease_seconds=lease_seconds)
        self._wait = load_wait_seconds
        self._max_shrink = max_shrink_percent / 100
        self._configured = {f"{kind}:{value}": inn for inn, names in (aliases or {}).items()
                            for kind, values in (("owner", names.owner_ids),
                                                 ("mnc", names.mncs)) for value in values}
        self._refresh = refresh_seconds
        self._index: RouterIndex | None = None
        self._versions: tuple[int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def import_plan(self, path: Path, progress: Progress | None = None, *,
                    allow_shrink: bool = False, waiting: Waiting | None = None,
                    before_switch: Hook | None = None) -> ImportReport:
        """Replace the numbering plan by the file's; a bad file changes nothing.

        The load waits for a running routing load (``waiting`` is told once, with what it
        waits for) and is refused when ``load_wait_seconds`` pass. A plan that would stop
        routing more than ``max_shrink_percent`` of the numbers the active plan routes is
        refused unless ``allow_shrink``. ``before_switch`` is called when the rows are
        written and not yet active.
        """
        started = time.perf_counter()
        plan = read_plan(path, progress)
        generation = self.store.load_plan(plan, path.name, datetime.now(UTC),
                                          self._guard(allow_shrink, waiting, before_switch))
        return ImportReport("plan", len(plan.ranges), len(plan.names), generation,
                            time.perf_counter() - started)

    def import_ports(self, path: Path, kind: Kind | None = None,
                     progress: Progress | None = None, *, allow_shrink: bool = False,
                     waiting: Waiting | None = None, before_switch: Hook | None = None
                     ) -> ImportReport:
        """Load a full snapshot (replaces all ports) or an increment (changes some).

        As :meth:`import_plan`: loads wait for each other, and a full snapshot with fewer
        than ``100 - max_shrink_percent`` % of the active ports' rows is refused unless
        ``allow_shrink``; an empty snapshot is always refused. An increment applies to the
        generation active when it commits, after any full load that was running.
        """
        started = time.perf_counter()
        chosen = kind_of(path, kind)
        self.store.save_aliases(self._configured)
        aliases = self.store.aliases()
        now = datetime.now(UTC)
        rows = read_ports(path, aliases.get, progress, now)
        guard = self._guard(allow_shrink, waiting, before_switch)
        generation = self.store.load_ports(rows, path.name, now, guard=guard) \
            if chosen == "full" else self.store.apply_increment(rows, path.name, now, guard)
        return ImportReport(f"ports ({chosen})", len(rows), len(rows.inns), generation,
                            time.perf_counter() - started)

    def _guard(self, allow_shrink: bool, waiting: Waiting | None,
               before_switch: Hook | None) -> Guard:
        return Guard(max_shrink=self._max_shrink, allow_shrink=allow_shrink,
                     wait_seconds=self._wait, waiting=waiting, before_switch=before_switch)

    def router(self) -> RouterIndex:
        """The current index, rebuilt when the data changed since it was built."""
        now = time.monotonic()
        if self._index is not None and now - self._checked < self._refresh:
            return self._index
        with self._lock:
            versions = self.store.versions()
            self._checked = time.monotonic()
            if self._index is None or versions != self._versions:
                index = self.store.snapshot()
                self._index, self._versions = index, versions
            return self._index

    def route(self, number: str) -> RouteResult:
        """The operator serving ``number`` (E.164 or national) now; refuses non-Russian numbers."""
        e164 = normalize(number, default_region="RU", allowed_regions=RUSSIA)
        return self.router().route_national(e164, national_significant(e164))

    def route_many(self, numbers: Sequence[str]) -> list[RouteResult]:
        """Route many numbers in one vectorised pass."""
        return self.route_e164([normalize(n, default_region="RU", allowed_regions=RUSSIA)
                                for n in numbers])

    def route_e164(self, e164: Sequence[str]) -> list[RouteResult]:
        """``route_many`` for numbers already normalised to Russian E.164 (``+7`` and ten
        digits), as a caller that checked them itself holds them."""
        index = self.router()
        national = np.fromiter((national_significant(n) for n in e164), dtype=np.int64,
                               count=len(e164))
        operators, regions, sources = index.route_bulk(national)
        return [RouteResult(n, index.operators[o] if o >= 0 else None,
                            index.regions[r] if r >= 0 else None, SOURCES[s])
                for n, o, r, s in zip(e164, operators.tolist(), regions.tolist(),
                                      sources.tolist(), strict=True)]


def parse_numbers(raw: Iterable[str]) -> list[str]:
    """Normalise each number (E.164 or the Russian national form), naming the first that is not
    a Russian number."""
    parsed = []
    for value in raw:
        try:
            parsed.append(normalize(value, default_region="RU", allowed_regions=RUSSIA))
        except InvalidInput as exc:
            raise InvalidInput(f"{value!r}: {exc.message}", code=exc.code) from exc
    return parsed
