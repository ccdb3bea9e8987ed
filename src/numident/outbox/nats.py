"""NATS JetStream plumbing: connecting, declaring streams, and a generic durable subscriber.

``JetStreamSubscriber`` feeds messages from the operator's systems (lifecycle events) to a
handler, one at a time in stream order, and settles each message by what the handler did:
it returned (ack), it raised ``PoisonMessage`` (term: the payload can never be handled; logged),
or it raised anything else (nak with a growing delay, so the event is handled again later).
A replica that dies mid-handler leaves its message unacknowledged; JetStream redelivers it
after ``ack_wait``, so handlers must be idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from numident.errors import UpstreamUnavailable
from numident.outbox.loop import StopSignal
from numident.outbox.policy import RetryPolicy

log = logging.getLogger(__name__)

Handler = Callable[[bytes, dict[str, str]], Awaitable[None]]
"""``handler(payload, headers)``: returns when the message is handled."""

_SUBJECT_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class PoisonMessage(Exception):
    """Raised by a handler for a message that can never be handled (bad payload): term it."""


async def connect(url: str, *, name: str = "numident", initial_timeout: float = 10.0) -> NATS:
    """Connect to NATS at ``url`` (comma-separated for a cluster) and stay connected.

    After the first connection the client reconnects forever (about every second), buffering
    publishes meanwhile; the first connection must succeed within ``initial_timeout`` seconds,
    else ``UpstreamUnavailable`` is raised, so a misconfigured URL fails fast at start-up.
    """

    async def on_error(exc: Exception) -> None:
        log.warning("NATS connection problem: %s", exc)

    client = NATS()
    try:
        await asyncio.wait_for(
            client.connect(
                servers=url.split(","), name=name, allow_reconnect=True,
                max_reconnect_attempts=-1, reconnect_time_wait=1, connect_timeout=2,
                ping_interval=10, max_outstanding_pings=3, error_cb=on_error,
            ),
            initial_timeout,
        )
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        await client.close()
        raise UpstreamUnavailable(f"cannot connect to NATS at {url}") from exc
    return client


async def ensure_stream(
    js: JetStreamContext,
    name: str,
    subjects: Sequence[str],
    *,
    work_queue: bool = False,
    duplicate_window: timedelta = timedelta(minutes=2),
    max_age: timedelta | None = None,
) -> None:
    """Create stream ``name`` on file storage, or update it to these settings if it exists.

    ``duplicate_window`` is how long JetStream remembers ``Nats-Msg-Id`` headers to drop
    re-publications; ``work_queue`` deletes each message once a consumer acknowledges it.
    """
    config = StreamConfig(
        name=name, subjects=list(subjects), storage=StorageType.FILE,
        retention=RetentionPolicy.WORK_QUEUE if work_queue else RetentionPolicy.LIMITS,
        duplicate_window=duplicate_window.total_seconds(),
        max_age=max_age.total_seconds() if max_age else None,
    )
    try:
        await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)


def subject_token(value: str) -> str:
    """``value`` made safe as one subject token (no dots, wildcards or spaces)."""
    return _SUBJECT_UNSAFE.sub("_", value) or "_"


async def fetch(subscription: JetStreamContext.PullSubscription, batch: int,
                wait: float) -> list[Msg]:
    """Up to ``batch`` messages, waiting at most ``wait`` seconds; [] when none came."""
    try:
        return await subscription.fetch(batch, timeout=wait)
    except (nats.errors.TimeoutError, TimeoutError):
        return []


class DurablePullConsumer(ABC):
    """A durable pull consumer on ``stream`` filtered to ``subject``: binding, closing, and the
    fetch loop; a subclass handles each fetched batch in ``run_once``.

    Several replicas may share one ``durable`` name: JetStream hands each message to one of them,
    and the consumer and its position stay on the server when a replica closes.
    """

    js: JetStreamContext
    stream: str
    subject: str
    durable: str
    _subscription: JetStreamContext.PullSubscription | None = None

    @abstractmethod
    def consumer_config(self) -> ConsumerConfig:
        """The settings the durable consumer is created with."""

    @abstractmethod
    async def run_once(self, wait: float = 1.0) -> int:
        """Handle one fetched batch (waiting up to ``wait`` s for it)."""

    async def start(self) -> None:
        """Create (or bind to) the durable consumer."""
        if self._subscription is None:
            self._subscription = await self.js.pull_subscribe(
                self.subject, durable=self.durable, stream=self.stream,
                config=self.consumer_config(),
            )

    async def close(self) -> None:
        """Stop pulling; the durable consumer and its position stay on the server."""
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None

    async def fetch(self, batch: int, wait: float) -> list[Msg]:
        """Up to ``batch`` messages from the consumer (bound first), waiting at most ``wait`` s."""
        await self.start()
        assert self._subscription is not None
        return await fetch(self._subscription, batch, wait)

    async def run(self, stop: StopSignal, poll_timeout: float = 1.0) -> None:
        """Handle messages until ``stop`` is set (noticed within ``poll_timeout`` seconds)."""
        await self.start()
        while not stop.is_set():
            try:
                await self.run_once(poll_timeout)
            except nats.errors.Error:  # connection trouble: the client reconnects by itself
                log.exception("fetching from %s failed", self.stream)
                await asyncio.sleep(poll_timeout)


class JetStreamSubscriber(DurablePullConsumer):
    """A durable pull consumer on ``stream`` (filtered to ``subject``) feeding ``handler``."""

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        subject: str,
        durable: str,
        handler: Handler,
        *,
        backoff: RetryPolicy | None = None,
        batch_size: int = 32,
        ack_wait: float = 30.0,
    ) -> None:
        self.js = js
        self.stream = stream
        self.subject = subject
        self.durable = durable
        self.handler = handler
        self.backoff = backoff or RetryPolicy(max_delay=timedelta(minutes=1))
        self.batch_size = batch_size
        self.ack_wait = ack_wait

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(ack_wait=self.ack_wait, max_deliver=-1)

    async def run_once(self, wait: float = 1.0) -> int:
        """Handle one batch (waiting up to ``wait`` s for it); returns messages acknowledged."""
        acked = 0
        for msg in await self.fetch(self.batch_size, wait):
            acked += await self._handle(msg)
        return acked

    async def _handle(self, msg: Msg) -> int:
        try:
            await self.handler(msg.data, dict(msg.headers or {}))
        except PoisonMessage as exc:
            log.error("terminating poison message on %s (seq %s): %s",
                      msg.subject, msg.metadata.sequence.stream, exc)
            await msg.term()
            return 0
        except Exception:  # one failing event must not stop the others
            delay = self.backoff.delay(msg.metadata.num_delivered).total_seconds()
            log.exception("handler failed on %s; redelivery in %.1fs", msg.subject, delay)
            await msg.nak(delay=delay)
            return 0
        await msg.ack()
        return 1
