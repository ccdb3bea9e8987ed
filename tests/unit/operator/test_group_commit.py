"""Group commit: what concurrent callers submit is written together, each gets its own outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from numident.operator.group_commit import ROUND_ITEMS, GroupCommit

pytestmark = pytest.mark.anyio


class Refused(Exception):
    pass


class Writer:
    """A ``write`` that records its rounds and doubles each job; a negative job is refused."""

    def __init__(self) -> None:
        self.rounds: list[list[int]] = []
        self.threads: set[int] = set()
        self.fail_next = False
        self.entered = threading.Event()
        self.release: threading.Event | None = None

    def __call__(self, jobs: Sequence[int]) -> list[int | Exception]:
        self.threads.add(threading.get_ident())
        self.rounds.append(list(jobs))
        self.entered.set()
        if self.release is not None:
            self.release.wait(5)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the transaction failed")
        return [Refused(f"job {j}") if j < 0 else 2 * j for j in jobs]


async def test_jobs_submitted_together_are_written_in_one_round_off_the_loop() -> None:
    """Five concurrent callers share one call of ``write``, on a worker thread, and each
    gets the result of its own job."""
    writer = Writer()
    commits: GroupCommit[int, int] = GroupCommit(writer)
    results = await asyncio.gather(*(commits.submit(n) for n in range(1, 6)))
    assert results == [2, 4, 6, 8, 10]
    assert writer.rounds == [[1, 2, 3, 4, 5]]
    assert threading.get_ident() not in writer.threads


async def test_a_refused_job_fails_its_own_caller_alone() -> None:
    """The job that ``write`` refuses raises at its caller; the others of its round succeed."""
    commits: GroupCommit[int, int] = GroupCommit(Writer())
    outcomes = await asyncio.gather(commits.submit(1), commits.submit(-1), commits.submit(3),
                                    return_exceptions=True)
    assert (outcomes[0], outcomes[2]) == (2, 6)
    assert isinstance(outcomes[1], Refused)
    assert str(outcomes[1]) == "job -1"


async def test_a_failed_round_fails_each_of_its_jobs_and_the_next_round_runs() -> None:
    """When ``write`` itself raises, every caller of that round gets the error; later
    submissions are written by a new round."""
    writer = Writer()
    writer.fail_next = True
    commits: GroupCommit[int, int] = GroupCommit(writer)
    outcomes = await asyncio.gather(commits.submit(1), commits.submit(2),
                                    return_exceptions=True)
    assert [str(o) for o in outcomes] == ["the transaction failed"] * 2
    assert await commits.submit(7) == 14
    assert writer.rounds == [[1, 2], [7]]


async def test_jobs_that_arrive_during_a_round_are_written_by_the_next_one() -> None:
    """While a round is being written, new jobs wait and then go together in one round."""
    writer = Writer()
    writer.release = threading.Event()
    commits: GroupCommit[int, int] = GroupCommit(writer)
    first = asyncio.ensure_future(commits.submit(1))
    await asyncio.to_thread(writer.entered.wait, 5)
    later = [asyncio.ensure_future(commits.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    writer.release.set()
    assert await first == 2
    assert [await f for f in later] == [4, 6, 8]
    assert writer.rounds == [[1], [2, 3, 4]]


async def test_a_round_holds_at_most_round_items_items() -> None:
    """Jobs are sized by ``size``: a round takes jobs in order until the next would pass
    ROUND_ITEMS, and always at least one."""
    writer = Writer()
    commits: GroupCommit[int, int] = GroupCommit(writer, size=lambda job: job)
    half = ROUND_ITEMS // 2
    results = await asyncio.gather(*(commits.submit(n) for n in (half, half, 1, 2 * ROUND_ITEMS)))
    assert results == [2 * half, 2 * half, 2, 4 * ROUND_ITEMS]
    assert writer.rounds == [[half, half], [1], [2 * ROUND_ITEMS]]


async def test_several_writers_write_rounds_at_once() -> None:
    """With two writers, a job that arrives while a round is being written starts a second
    round at once instead of waiting for the first (PostgreSQL's case)."""
    writer = Writer()
    writer.release = threading.Event()
    commits: GroupCommit[int, int] = GroupCommit(writer, writers=2)
    first = asyncio.ensure_future(commits.submit(1))
    await asyncio.to_thread(writer.entered.wait, 5)
    writer.entered.clear()
    second = asyncio.ensure_future(commits.submit(2))
    assert await asyncio.to_thread(writer.entered.wait, 5)
    assert writer.rounds == [[1], [2]]  # both in the writer before either returned
    writer.release.set()
    assert (await first, await second) == (2, 4)

