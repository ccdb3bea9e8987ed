"""A token bucket: how many identification items an organizer may send per second.

Pure arithmetic on a time in seconds that the caller reads from its clock, so tests move time
instead of sleeping. The bucket holds at most ``capacity`` tokens (one second's worth by
default) and refills at ``rate`` tokens per second; each item costs one token.

A request of ``cost`` items is taken when the bucket holds that many tokens. A request larger
than the whole bucket (a batch of 1000 against a limit of 100/s) is taken only from a full
bucket, which then goes into debt: the organizer waits until the debt is repaid, so the long-run
rate still never exceeds ``rate``, and a batch of any size can eventually pass. A refusal is a
value (the seconds to wait), not an exception.

``limits`` and ``pyrate-limiter`` were the candidates: both read the system time with no clock to
inject, and both refuse forever a cost larger than the limit, which would make large batches
impossible under a small rate.
"""

from __future__ import annotations

from dataclasses import dataclass

# Refill arithmetic on floats: 0.1 s ten times is not quite one token.
_EPSILON = 1e-9


@dataclass
class TokenBucket:
    rate: float
    capacity: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, now: float, capacity: float | None = None) -> TokenBucket:
        """A bucket of ``rate`` tokens per second, full at ``now``."""
        if rate <= 0:
            raise ValueError("a token bucket's rate must be positive")
        size = capacity if capacity is not None else rate
        return cls(rate=rate, capacity=size, tokens=size, updated=now)

    def take(self, cost: int, now: float) -> float:
        """Take ``cost`` tokens at ``now``: 0.0 when taken, else the seconds to wait first.

        A refused request takes nothing.
        """
        self._refill(now)
        needed = min(float(cost), self.capacity)
        if self.tokens + _EPSILON >= needed:
            self.tokens -= cost
            return 0.0
        return (needed - self.tokens) / self.rate

    def _refill(self, now: float) -> None:
        # A clock that steps back (wall time corrected) refills nothing rather than draining.
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)
