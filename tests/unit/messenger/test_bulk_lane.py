"""The lane that hands a streamed file's batches to one operator's senders."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from numident.messenger.bulk import Work, _Lane

pytestmark = pytest.mark.anyio
PROVEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def batch(n: int) -> list[Work]:
    return [Work(f"u{n}", "+79161234567", f"code-{n}", PROVEN, "7700000016", "Alfa")]


async def test_batches_past_the_room_wait_on_disk_and_come_out_in_order() -> None:
    """With room for two in memory, five batches all come out, first in first out, and the
    lane ends once closed and empty."""
    lane = _Lane(2)
    for n in range(5):
        lane.offer(batch(n))
    lane.close()

    taken = [await lane.take() for _ in range(6)]

    assert taken == [batch(n) for n in range(5)] + [None]
    assert len(lane._waiting) == 0


async def test_a_stopped_lane_drops_what_waits_and_what_comes() -> None:
    """After stop, take ends at once and later batches are not kept."""
    lane = _Lane(1)
    lane.offer(batch(0))
    lane.offer(batch(1))
    lane.stop()
    lane.offer(batch(2))

    assert await lane.take() is None
    assert len(lane._waiting) == 0
