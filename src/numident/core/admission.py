"""Admission of deferred requests, from the rate at which the gateway really answers.

SPEC rule 3: an operator never accepts work it cannot answer in time; under overload it refuses
new requests at once with 429 and ``Retry-After``. The queue is served earliest-deadline-first,
so a new request is answered after every pending request that can still make its deadline; how
long that takes depends on the drain rate, which is measured (``DrainMeter``) rather than
derived from settings, because the registry check, the database and the host decide it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

SAFETY_SHARE = 0.25
"""The share of the deadline kept free for a drain rate that falls after admission (under load
the same host answers more slowly than it was measured to). It costs no throughput: a full
queue drains at the full rate whatever its length."""
MIN_RATE = 1e-6
"""Answers per second assumed at least, so that a rate of zero still gives a finite wait."""


@dataclass(frozen=True)
class Admission:
    """Whether deferred requests may be accepted now.

    ``expected_wait`` is the seconds until the last of them would be answered; when refused,
    ``retry_after`` is the whole seconds until the queue will have drained far enough that
    they would fit (at least 1, the resolution of the header).
    """

    accepted: bool
    expected_wait: float
    retry_after: int = 0


def admit(*, ahead: int, items: int, answers_per_second: float, deadline: timedelta,
          pending: int, max_pending: int) -> Admission:
    """Decide whether ``items`` new requests can be answered within ``deadline``.

    ``ahead`` is the number of pending requests that can still make their deadlines (they are
    all due before the new ones); ``pending`` counts every stored pending request against the
    hard bound ``max_pending``. The new requests are accepted when the queue, drained at
    ``answers_per_second``, answers the last of them ``SAFETY_SHARE`` of the deadline early.
    """
    rate = max(answers_per_second, MIN_RATE)
    wait = (ahead + items) / rate
    budget = deadline.total_seconds() * (1 - SAFETY_SHARE)
    if wait <= budget and pending + items <= max_pending:
        return Admission(True, wait)
    excess = max(wait - budget, (pending + items - max_pending) / rate)
    return Admission(False, wait, retry_after=max(1, math.ceil(excess)))


class DrainMeter:
    """The answers per second one replica achieves, over a moving window of answer batches.

    Each batch is recorded with its real start, end and number of answers. A batch with fewer
    requests than ``workers`` kept only some workers busy; its rate is scaled to what all of
    them would have answered, so that a lightly loaded gateway does not underrate itself.
    Before any batch is measured the rate is ``workers / prior_seconds`` (the configured check
    time plus an allowance for the database).
    """

    def __init__(self, workers: int, prior_seconds: float, window: int = 20) -> None:
        self.workers = max(1, workers)
        self.prior_seconds = max(prior_seconds, 1e-3)
        self._batches: deque[tuple[float, float]] = deque(maxlen=window)

    def record(self, started: datetime, finished: datetime, answered: int) -> None:
        """Record a batch of ``answered`` answers that ran from ``started`` to ``finished``."""
        if answered <= 0:
            return
        seconds = max((finished - started).total_seconds(), 1e-6)
        busy = min(answered, self.workers)
        self._batches.append((answered * self.workers / busy, seconds))

    @property
    def measured(self) -> bool:
        return bool(self._batches)

    @property
    def answers_per_second(self) -> float:
        if not self._batches:
            return self.workers / self.prior_seconds
        return sum(a for a, _ in self._batches) / sum(s for _, s in self._batches)

    @property
    def batch_seconds(self) -> float:
        """The mean duration of a measured batch (0 before any)."""
        if not self._batches:
            return 0.0
        return sum(s for _, s in self._batches) / len(self._batches)
