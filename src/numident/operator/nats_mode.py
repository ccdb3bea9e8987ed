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

import httpx2
from nats.aio.client import Client as NATS
from sqlalchemy import Engine

from numident.camara.sim_swap_events import OUTBOX_KIND
from numident.client.keys import PrivateKey
from numident.client.signatures import NoticeSigner
from numident.config import OperatorSettings
from numident.core.clock import Clock
from numident.operator.ciba import PING_KIND
from numident.operator.gateway import Gateway
from numident.operator.lifecycle_intake import NatsLifecycleIntake
from numident.operator.notice_delivery import audited_outbox, retry_policy
from numident.outbox.dispatcher import Sender
from numident.outbox.http_sender import HttpSender
from numident.outbox.nats import JetStreamSubscriber, connect, ensure_stream, subject_token
from numident.outbox.nats_relay import JetStreamDeliveryWorker, JetStreamNoticeRelay
from numident.outbox.store import Settlement


@dataclass(frozen=True)
class Subjects:
    lifecycle_stream: str
    lifecycle_subject: str
    notice_stream: str
    notice_subject: str
    sink_event_subject: str
    ping_subject: str

    @classmethod
    def for_gateway(cls, settings: OperatorSettings) -> Subjects:
        prefix, name = settings.nats_prefix, subject_token(settings.name)
        stream = subject_token(prefix).upper()
        return cls(f"{stream}_LIFECYCLE_{name.upper()}", f"{prefix}.lifecycle.{name}",
                   f"{stream}_NOTICES_{name.upper()}", f"{prefix}.notice.>",
                   f"{prefix}.{subject_token(OUTBOX_KIND)}.>",
                   f"{prefix}.{subject_token(PING_KIND)}.>")


async def connect_gateway(settings: OperatorSettings) -> NATS:
    """Connect and declare the streams at start-up, before the gateway takes requests.

    A wrong URL stops the gateway instead of silently its notices, and an event published as
    soon as the gateway is up finds its stream.
    """
    assert settings.nats_url is not None
    connection = await connect(settings.nats_url, name=f"numident-{settings.name}")
    subjects = Subjects.for_gateway(settings)
    js = connection.jetstream()
    try:
        await ensure_stream(js, subjects.lifecycle_stream, [subjects.lifecycle_subject])
        await ensure_stream(js, subjects.notice_stream,
                            [subjects.notice_subject, subjects.sink_event_subject,
                             subjects.ping_subject],
                            work_queue=True)
    except BaseException:
        await connection.close()
        raise
    return connection


async def run_nats(connection: NATS, gateway: Gateway, settings: OperatorSettings,
                   engine: Engine, client: httpx2.AsyncClient, key: PrivateKey,
                   sink_sender: Sender, clock: Clock, stop: asyncio.Event, *,
                   ping_sender: Sender,
                   on_settled: Callable[[Sequence[Settlement]], None] = lambda _: None) -> None:
    """Consume lifecycle events and relay and deliver notices (SIM swap events through
    ``sink_sender``, CIBA pings through ``ping_sender``) until ``stop`` is set."""
    subjects = Subjects.for_gateway(settings)
    try:
        js = connection.jetstream()
        store = audited_outbox(engine)
        policy = retry_policy(settings.dispatch)
        relay = JetStreamNoticeRelay(store, js, clock, prefix=settings.nats_prefix,
                                     lease_seconds=settings.dispatch.lease_seconds)
        gateway.on_notice = relay.wake
        sender = HttpSender(client, NoticeSigner(key, now=clock.now).sign, now=clock.now)
        worker = JetStreamDeliveryWorker(
            js, store, sender, clock, policy, stream=subjects.notice_stream,
            subject=subjects.notice_subject, durable=f"{subjects.notice_stream}-delivery",
            concurrency=settings.dispatch.concurrency)
        sink_worker = JetStreamDeliveryWorker(
            js, store, sink_sender, clock, policy,
            stream=subjects.notice_stream, subject=subjects.sink_event_subject,
            durable=f"{subjects.notice_stream}-sim-swap-delivery",
            concurrency=settings.dispatch.concurrency)
        ping_worker = JetStreamDeliveryWorker(
            js, store, ping_sender, clock, policy,
            stream=subjects.notice_stream, subject=subjects.ping_subject,
            durable=f"{subjects.notice_stream}-ciba-ping-delivery",
            concurrency=settings.dispatch.concurrency)
        for each in (worker, sink_worker, ping_worker):
            each.on_settled = on_settled
        intake = JetStreamSubscriber(js, subjects.lifecycle_stream, subjects.lifecycle_subject,
                                     f"{subjects.lifecycle_stream}-gateway",
                                     NatsLifecycleIntake(gateway).handle)
        await asyncio.gather(relay.run(stop, idle_interval=settings.dispatch.poll_seconds),
                             worker.run(stop), sink_worker.run(stop), ping_worker.run(stop),
                             intake.run(stop))
        await worker.close()
        await sink_worker.close()
        await ping_worker.close()
        await intake.close()
    finally:
        await connection.close()
