"""The wire contracts the two sides and ``numident.client`` share, one home each.

* :mod:`numident.wire.notice`: the notice, to and from a CloudEvent 1.0;
* :mod:`numident.wire.answer`: the identification API's answer document, built and read;
* :mod:`numident.wire.error_body`: the ``{"status","code","message"}`` error body;
* :mod:`numident.wire.bearer`: the ``Authorization: Bearer`` header, read.

Timestamps are :func:`numident.core.clock.rfc3339` and :func:`numident.core.clock.parse_rfc3339`.
The notice, answer and bearer modules import no server dependency (the standard library, the
CloudEvents SDK, ``numident.core`` and ``numident.errors``), because ``numident.client`` runs on
the base install; ``error_body`` is a pydantic model for the servers' OpenAPI documents, so this
package imports none of its modules itself.
"""
