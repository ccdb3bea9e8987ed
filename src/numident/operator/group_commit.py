"""Group commit: concurrent requests written by one writer, in one transaction per round.

A single identification costs little SQL but a whole transaction: a begin, a commit (on
SQLite the write lock, taken in turn by every request) and a thread to run it in. Here the
requests that arrive while a round is being written wait together and are written by the next
round, all in one transaction, on one worker thread: the cost of a transaction is shared by
every request of its round, and under load each round takes what arrived during the last.
Each caller still waits until its own work is committed, so nothing is answered before it is
durable; how a round keeps one caller's failure from the others is the ``write`` function's
business (:func:`numident.operator.identification.answer_together` uses savepoints).
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
    round. ``size`` tells how many items a job holds, to bound a round.
    """

    def __init__(self, write: Callable[[Sequence[Job]], Sequence[Result | Exception]],
                 size: Callable[[Job], int] = lambda _: 1) -> None:
        self._write = write
        self._size = size
        self._waiting: list[tuple[Job, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, job: Job) -> Result:
        """The job's result once the round that wrote it has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        writer = self._writer
        if writer is not None and writer.get_loop() is not loop:
            # A new event loop (the old one has ended): what waited there has no caller left.
            self._waiting = [w for w in self._waiting if w[1].get_loop() is loop]
        self._waiting.append((job, future))
        if writer is None or writer.done() or writer.get_loop() is not loop:
            self._writer = loop.create_task(self._rounds())
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
