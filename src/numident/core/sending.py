"""The rules that bound how many one-time codes are sent, and where (defence against pumping).

Toll fraud ("SMS pumping") asks for codes to numbers whose termination fees the fraudster
shares. The guards, each a pure function of the sends already recorded:

- a budget: at most ``limit`` sends in any ``window`` (sliding); over it, the wait is until
  enough of the sends in the window have aged out of it;
- a circuit per number range: when at least ``min_sends`` codes were sent into the range in the
  window and fewer than ``min_ratio`` of them were confirmed, the range is closed until the
  sends that make it so have aged out (codes that are asked for and never typed in are what a
  pumping run looks like; real users type theirs in).

Refusals are values (``Refusal``), not exceptions: being over a budget is expected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Refusal:
    reason: str
    """What refused: ``per_number``, ``per_range``, ``per_region``, ``per_address``, ``total``,
    ``circuit_open``, ``resend_too_soon`` or ``not_mobile``."""
    retry_after: int
    """Whole seconds until the request could pass (0: it never will, as it stands)."""


def seconds_until(moment: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` until ``moment``, rounded up, at least 1."""
    return max(1, math.ceil((moment - now).total_seconds()))


def budget_wait(sends: Sequence[datetime], limit: int, window: timedelta,
                now: datetime) -> int | None:
    """None when one more send fits ``limit`` per ``window``; else the seconds to wait.

    ``sends`` are the times of the sends in the window ending at ``now``, in any order.
    """
    recent = sorted(at for at in sends if at > now - window)
    if len(recent) < limit:
        return None
    if limit == 0:
        return seconds_until(now + window, now)
    # One more fits once all but limit - 1 of them have left the window.
    return seconds_until(recent[len(recent) - limit] + window, now)


def circuit_wait(sends: Sequence[tuple[datetime, bool]], min_sends: int, min_ratio: float,
                 window: timedelta, now: datetime) -> int | None:
    """None when the range is open for sends; else the seconds until it would be.

    ``sends`` are ``(sent_at, confirmed)`` of the range's sends in the window ending at
    ``now``. The wait assumes no new sends: the oldest leave the window one by one.
    """
    recent = sorted((at, ok) for at, ok in sends if at > now - window)
    confirmed = sum(1 for _, ok in recent if ok)
    for left, (_, ok) in enumerate(recent):
        total = len(recent) - left
        if total < min_sends or confirmed >= min_ratio * total:
            return None if left == 0 else seconds_until(recent[left - 1][0] + window, now)
        confirmed -= ok
    return None if not recent else seconds_until(recent[-1][0] + window, now)
