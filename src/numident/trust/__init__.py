"""The gateway's side of trust between organisations: it checks who is calling.

``assertions`` (verifies an organizer's ``private_key_jwt``) -> ``tokens`` (the gateway's
access tokens) ; ``replay`` (the one-use memory of assertion ids); ``holder_key`` (the
installation's secret behind keyed digests and sealed tokens at rest). Keys, the making of
assertions and notice signatures are shared with organizers and live in :mod:`numident.client`.
Every refusal is :class:`numident.errors.Unauthenticated` with a stable code.
"""
