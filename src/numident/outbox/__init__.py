"""The durable outbox: messages committed with the events that cause them, delivered at least once.

- ``tables``: the outbox table factory (its timestamps are ``storage.types.UtcDateTime``);
- ``store``: ``SqlOutbox`` (add in the caller's transaction, lease, settle, staff operations);
- ``policy``: ``RetryPolicy`` (backoff and the 24-hour give-up);
- ``dispatcher``: ``Dispatcher`` and the ``Sender`` port; ``http_sender``: ``HttpSender``;
- ``nats``, ``nats_relay``: the JetStream mode for several replicas, and a generic subscriber.

The NATS modules are not imported here, so that the SQL path needs no NATS client.
"""

from numident.outbox.dispatcher import DeliveryOutcome, Dispatcher, Sender, Verdict
from numident.outbox.policy import RetryPolicy
from numident.outbox.store import OutboxMessage, OutboxRecord, Settlement, SqlOutbox
from numident.outbox.tables import STATUSES, outbox_table

__all__ = [
    "STATUSES",
    "DeliveryOutcome",
    "Dispatcher",
    "OutboxMessage",
    "OutboxRecord",
    "RetryPolicy",
    "Sender",
    "Settlement",
    "SqlOutbox",
    "Verdict",
    "outbox_table",
]
