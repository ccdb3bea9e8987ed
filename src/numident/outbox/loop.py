"""The polling loop shared by the dispatcher and the JetStream relay, and the batch runner on it.

A loop runs one step after another while the last step had a full batch, otherwise it idles
for ``idle_interval`` seconds of its clock, or until ``wake()`` is called (a writer that has just
committed a message), or until stopped. ``wake`` is safe to call from any thread, because sync
request handlers run in worker threads.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Protocol

from numident.core.clock import Clock

log = logging.getLogger(__name__)


class StopSignal(Protocol):
    """What ``run`` needs of a stop event: ``asyncio.Event`` and ``anyio.Event`` both fit."""

    def is_set(self) -> bool: ...

    async def wait(self) -> object: ...


class WakeableLoop:
    """Repeats an async ``step`` (returning whether there may be more work right away)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Cut the current idle wait short; callable from any thread, a no-op before ``run``."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def run(
        self, step: Callable[[], Awaitable[bool]], stop: StopSignal, idle_interval: float
    ) -> None:
        """Call ``step`` until ``stop`` is set; a failing step is logged and retried later."""
        self._loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    busy = await step()
                except Exception:  # one failed round (e.g. database restart) must not end the loop
                    log.exception("outbox loop step failed; retrying after %ss", idle_interval)
                    busy = False
                if not busy and not stop.is_set():
                    await self._idle(stop, idle_interval)
        finally:
            self._loop = None

    async def _idle(self, stop: StopSignal, idle_interval: float) -> None:
        waiters = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._clock.sleep(idle_interval)),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)


class BatchLoop(ABC):
    """``run``/``wake`` for a worker that handles due outbox rows one batch at a time.

    A subclass sets ``batch_size``, calls ``super().__init__(clock)`` and implements
    ``run_once``, recording the size of the batch it claimed in ``_last_batch``; a full batch
    is followed at once by the next one. ``wakeup`` is the loop to run on when writers were
    handed its ``wake`` before this worker was built (the composition root does so).
    """

    batch_size: int

    def __init__(self, clock: Clock, wakeup: WakeableLoop | None = None) -> None:
        self._loop = wakeup or WakeableLoop(clock)
        self._last_batch = 0

    @abstractmethod
    async def run_once(self) -> int:
        """Handle one batch; returns how many of its messages went through."""

    async def run(self, stop: StopSignal, idle_interval: float = 0.5) -> None:
        """Run batches until ``stop`` is set; a full batch is followed at once by the next one."""

        async def step() -> bool:
            await self.run_once()
            return self._last_batch >= self.batch_size

        await self._loop.run(step, stop, idle_interval)

    def wake(self) -> None:
        """Tell a running loop that a message was just committed (thread-safe)."""
        self._loop.wake()
