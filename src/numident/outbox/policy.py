"""When to try a failed delivery again, and when to give up.

Delays grow exponentially from ``initial`` by ``factor`` up to ``max_delay``, spread by
``jitter`` so that replicas recovering together do not hammer a receiver in step. Nothing is
retried past ``created_at + give_up_after`` (24 hours: the SPEC's notice deadline); the last
try is pulled in to the deadline itself rather than dropped, so every message gets the whole
window. A receiver's ``Retry-After`` postpones the next try but never beyond ``max_delay``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from numident.config import DispatchSettings

from numident.core.backoff import backoff


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter and a give-up deadline; deterministic when ``jitter=0``."""

    initial: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    max_delay: timedelta = timedelta(hours=1)
    jitter: float = 0.1
    give_up_after: timedelta = timedelta(hours=24)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial <= timedelta(0) or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError("RetryPolicy needs initial > 0, factor >= 1 and 0 <= jitter < 1")

    @classmethod
    def from_settings(cls, settings: DispatchSettings) -> RetryPolicy:
        """The policy a side's ``[*.dispatch]`` section configures (the other fields default)."""
        return cls(initial=timedelta(seconds=settings.initial_backoff_seconds),
                   max_delay=timedelta(seconds=settings.max_backoff_seconds),
                   give_up_after=timedelta(hours=settings.give_up_after_hours))

    def delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1 -> ``initial``), jitter included."""
        # In float seconds: factor ** exponent overflows timedelta quickly.
        seconds = backoff(max(attempts, 1) - 1, self.initial.total_seconds(),
                          self.max_delay.total_seconds(), self.factor)
        if self.jitter:
            seconds *= 1 + self.rng.uniform(-self.jitter, self.jitter)
        return timedelta(seconds=seconds)

    def next_attempt(
        self,
        created_at: datetime,
        attempts: int,
        now: datetime,
        *,
        retry_after: float | None = None,
    ) -> datetime | None:
        """When to try again after ``attempts`` failed attempts, or None to give up (dead letter).

        ``created_at`` opens the give-up window (pass the requeue time for a requeued letter).
        ``retry_after`` is the receiver's own request, in seconds, honoured up to ``max_delay``.
        """
        deadline = created_at + self.give_up_after
        if now >= deadline:
            return None
        wait = self.delay(attempts)
        if retry_after is not None:
            wait = max(wait, min(timedelta(seconds=retry_after), self.max_delay))
        return min(now + wait, deadline)
