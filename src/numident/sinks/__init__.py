"""Receivers that organizers name, and the gateway then POSTs to with a bearer token.

A SIM swap subscription's sink and a CIBA client's notification endpoint are both such
receivers: :mod:`~numident.sinks.addresses` refuses those inside the operator's network, and
:mod:`~numident.sinks.tokens` keeps their bearer tokens sealed at rest. Neither knows the API
that registered the receiver.
"""
