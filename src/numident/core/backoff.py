"""Exponential backoff, the one formula behind every wait numident grows: the outbox's retry
policy and the messenger's polling of a pending answer."""

from __future__ import annotations


def backoff(step: int, initial: float, maximum: float, factor: float = 2.0) -> float:
    """The wait before repetition ``step`` (0-based): ``initial`` times ``factor`` per step,
    capped at ``maximum`` (however large ``step`` grows)."""
    try:
        return float(min(initial * float(factor) ** step, maximum))
    except OverflowError:
        return float(maximum)
