"""Group commit: concurrent requests written by one writer, in one transaction per round.

A single identification costs little SQL but a whole transaction: a begin, a commit (on
SQLite the write lock, taken in turn by every request) and a thread to run it in. Here the
requests that arrive while a round is being written wait together and are written by the next
round, all in one transaction, on one worker thread: the cost of a transaction is shared by
every request of its round, and under load each round takes what arrived during the last.
On PostgreSQL, whose writers do not exclude each other, a few rounds may be written at once
(``writers``), so that one round's round trips to the server overlap another's; on SQLite one
writer is all the file lets in. Each caller still waits until its own work is committed, so
nothing is answered before it is durable; how a round keeps one caller's failure from the
others is the ``write`` function's business (:func:`numident.operator.identification.
answer_together` uses savepoints).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import anyio

Job = TypeVar("Job")
Result = TypeVar("Result")

ROUND_ITEMS = 1000
"""A round stops taking jobs once it holds this many items (the batch endpoint's unit)."""


class GroupCommit(Generic[Job, Result]):
    """Runs ``write(jobs)`` (blocking, in a worker thread) for the jobs submitted meanwhile.

    ``write`` returns one outcome per job, in order: its result, or the exception to raise to
    that job's caller. An exception raised by ``write`` itself goes to every caller of the
    round. ``size`` tells how many items a job holds, to bound a round; at most ``writers``
    rounds are written at a time.
    """

    def __init__(self, write: Callable[[Sequence[Job]], Sequence[Result | Exception]],
                 size: Callable[[Job], int] = lambda _: 1, writers: int = 1) -> None:
        self._write = write
        self._size = size
        self._writers = writers
        self._waiting: list[tuple[Job, asyncio.Future[Result]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, job: Job) -> Result:
        """The job's result once the round that wrote it has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        if self._loop is not loop:
            # A new event loop (the old one has ended): what waited there has no caller left.
            self._loop, self._waiting, self._running = loop, [], set()
        self._waiting.append((job, future))
        # A writer that found nothing left to take is done at once but leaves _running only
        # when its callback runs: it must not be counted meanwhile.
        if sum(not w.done() for w in self._running) < self._writers:
            writer = loop.create_task(self._rounds())
            self._running.add(writer)
            writer.add_done_callback(self._running.discard)
        return await future

    async def _rounds(self) -> None:
        while self._waiting:
            round_ = self._take()
            try:
                outcomes = await anyio.to_thread.run_sync(
                    self._write, [job for job, _ in round_], abandon_on_cancel=False)
            except Exception as exc:  # the round failed as a whole: so did each of its jobs
                outcomes = [exc] * len(round_)
            for (_, future), outcome in zip(round_, outcomes, strict=True):
                if future.done():  # its caller went away; the work is committed all the same
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def _take(self) -> list[tuple[Job, asyncio.Future[Result]]]:
        taken, items = 0, 0
        for job, _ in self._waiting:
            if taken and items + self._size(job) > ROUND_ITEMS:
                break
            taken += 1
            items += self._size(job)
        round_, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return round_
