"""Trust between organisations: keys, private_key_jwt client credentials, signed notices.

``keys`` (key pairs and their files) -> ``assertions`` (organizer proves itself to a gateway)
-> ``tokens`` (the gateway's access tokens) ; ``notices`` (operator -> organizer, RFC 9421);
``replay`` (the one-use memory of assertion ids). Every refusal is
:class:`numident.errors.Unauthenticated` with a stable code.
"""
