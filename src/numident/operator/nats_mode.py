"""The gateway on NATS JetStream: lifecycle events in, notice dispatch shared by replicas.

Streams (``P`` = ``operator.nats_prefix``, ``N`` = ``operator.name``):

- ``{P}_LIFECYCLE_{N}`` on ``{P}.lifecycle.{N}``: events from the operator's systems, read by
  every replica through one durable consumer (each event is handled by one replica).
- ``{P}_NOTICES_{N}`` on ``{P}.notice.>``, ``{P}.sim_swap_event.>`` and ``{P}.ciba_ping.>``
  (work queue): outbox rows relayed by any replica and delivered by whichever replica pulls
  them; notices signed, SIM swap subscription events and CIBA pings with their receiver's
  bearer token, by one consumer each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nats.aio.client import Client as NATS

from numident.config import OperatorSettings
from numident.core.clock import Clock
from numident.operator.gateway import Gateway
from numident.operator.lifecycle_intake import NatsLifecycleIntake
from numident.operator.notice_delivery import retry_policy
from numident.outbox.dispatcher import Sender
from numident.outbox.loop import WakeableLoop
from numident.outbox.nats import JetStreamSubscriber, connect, ensure_stream, subject_token
from numident.outbox.nats_relay import JetStreamDeliveryWorker, JetStreamNoticeRelay
from numident.outbox.store import Settlement


@dataclass(frozen=True)
class Delivery:
    """One kind of outbox message: its sender and the name of its JetStream consumer."""

    kind: str
    sender: Sender
    consumer: str
    """The durable consumer is ``{notice stream}-{consumer}``."""


@dataclass(frozen=True)
class Subjects:
    lifecycle_stream: str
    lifecycle_subject: str
    notice_stream: str
    prefix: str

    @classmethod
    def for_gateway(cls, settings: OperatorSettings) -> Subjects:
        prefix, name = settings.nats_prefix, subject_token(settings.name)
        stream = subject_token(prefix).upper()
        return cls(f"{stream}_LIFECYCLE_{name.upper()}", f"{prefix}.lifecycle.{name}",
                   f"{stream}_NOTICES_{name.upper()}", prefix)

    def of(self, kind: str) -> str:
        """The subjects outbox messages of ``kind`` are relayed to."""
        return f"{self.prefix}.{subject_token(kind)}.>"


async def connect_gateway(settings: OperatorSettings, kinds: Sequence[str]) -> NATS:
    """Connect and declare the streams at start-up, before the gateway takes requests
    (``kinds``: the outbox kinds the notice stream carries).

    A wrong URL stops the gateway instead of silently its notices, and an event published as
    soon as the gateway is up finds its stream.
    """
    assert settings.nats_url is not None
    connection = await connect(settings.nats_url, name=f"numident-{settings.name}")
    subjects = Subjects.for_gateway(settings)
    js = connection.jetstream()
    try:
        await ensure_stream(js, subjects.lifecycle_stream, [subjects.lifecycle_subject])
        await ensure_stream(js, subjects.notice_stream, [subjects.of(kind) for kind in kinds],
                            work_queue=True)
    except BaseException:
        await connection.close()
        raise
    return connection


async def run_nats(connection: NATS, gateway: Gateway, settings: OperatorSettings,
                   clock: Clock, stop: asyncio.Event, *, wakeup: WakeableLoop,
                   deliveries: Sequence[Delivery],
                   on_settled: Callable[[Sequence[Settlement]], None] = lambda _: None) -> None:
    """Consume lifecycle events, relay the outbox (on ``wakeup``, the loop the gateway's
    writers wake) and deliver each kind of message through its own consumer until ``stop``
    is set."""
    subjects = Subjects.for_gateway(settings)
    try:
        js = connection.jetstream()
        store = gateway.outbox
        policy = retry_policy(settings.dispatch)
        relay = JetStreamNoticeRelay(store, js, clock, prefix=settings.nats_prefix,
                                     lease_seconds=settings.dispatch.lease_seconds,
                                     wakeup=wakeup)
        workers = [JetStreamDeliveryWorker(
            js, store, delivery.sender, clock, policy, stream=subjects.notice_stream,
            subject=subjects.of(delivery.kind),
            durable=f"{subjects.notice_stream}-{delivery.consumer}",
            concurrency=settings.dispatch.concurrency, on_settled=on_settled)
            for delivery in deliveries]
        intake = JetStreamSubscriber(js, subjects.lifecycle_stream, subjects.lifecycle_subject,
                                     f"{subjects.lifecycle_stream}-gateway",
                                     NatsLifecycleIntake(gateway).handle)
        await asyncio.gather(relay.run(stop, idle_interval=settings.dispatch.poll_seconds),
                             *(each.run(stop) for each in workers), intake.run(stop))
        for each in workers:
            await each.close()
        await intake.close()
    finally:
        await connection.close()
