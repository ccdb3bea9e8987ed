"""Memory of one-time identifiers (client-assertion ``jti``) until they expire.

A :class:`JtiStore` is the port; :class:`InMemoryJtiStore` serves tests and single-process
tools, the SQL store in ``numident.operator.replay`` serves replicated gateways.
"""

from __future__ import annotations

import heapq
import threading
from datetime import datetime
from typing import Protocol

from numident.core.clock import Clock


class JtiStore(Protocol):
    def remember(self, key: str, expires_at: datetime) -> bool:
        """Record ``key`` until ``expires_at``; False when it is already recorded and unexpired.

        Must be atomic: of two concurrent calls with the same key, exactly one returns True.
        """
        ...


class InMemoryJtiStore:
    """A bounded, thread-safe in-process store that forgets entries once they expire.

    When ``capacity`` live entries are held, the one closest to its expiry is forgotten
    first: memory stays bounded at the price of a replay window that can only open for an
    identifier about to expire anyway. Size the capacity above the expected number of
    assertions per ``max_lifetime`` so that this never happens.
    """

    def __init__(self, clock: Clock, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._clock = clock
        self._capacity = capacity
        self._expiry: dict[str, datetime] = {}
        # One (expires_at, key) heap entry per remembered key: the soonest expiry is on top.
        self._queue: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()

    def remember(self, key: str, expires_at: datetime) -> bool:
        with self._lock:
            now = self._clock.now()
            self._forget_until(now)
            if key in self._expiry:
                return False
            self._expiry[key] = expires_at
            heapq.heappush(self._queue, (expires_at, key))
            while len(self._expiry) > self._capacity:
                self._pop_soonest()
            return True

    def count(self) -> int:
        """Entries held now, expired ones included until the next ``remember``."""
        # Not __len__: an empty store must not be falsy (``store or default`` would bite).
        with self._lock:
            return len(self._expiry)

    def _forget_until(self, now: datetime) -> None:
        while self._queue and self._queue[0][0] <= now:
            self._pop_soonest()

    def _pop_soonest(self) -> None:
        _, key = heapq.heappop(self._queue)
        del self._expiry[key]
