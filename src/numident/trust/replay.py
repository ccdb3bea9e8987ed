"""Memory of one-time identifiers (assertion ``jti``, notice ids) until they expire."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Protocol


class JtiStore(Protocol):
    def remember(self, key: str, expires_at: datetime) -> bool:
        """Record ``key`` until ``expires_at``; False when it was already recorded (a replay)."""
        ...


class InMemoryJtiStore:
    """A bounded in-process store, for tests and single-process tools."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._capacity = capacity

    def remember(self, key: str, expires_at: datetime) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = expires_at
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True
