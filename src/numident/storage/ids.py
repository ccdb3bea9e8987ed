"""Row identifiers: time-ordered UUIDs (version 7, RFC 9562).

A request, a notice or an event is found by its id, so its table's primary key index takes
one entry per row. A random UUID (version 4) lands anywhere in that index: every insert
dirties a leaf page of its own, the pages end up about two thirds full, and the hot part of
the index is all of it. A version 7 UUID starts with the millisecond it was made, so the ids
of one moment sit side by side and inserts append to the right edge of the index, while the
74 random bits keep them as hard to guess as they need to be (they are names, not secrets).
The text form is the usual 36 characters, so nothing that reads an id changes.
"""

from __future__ import annotations

from uuid_utils.compat import uuid7


def new_id() -> str:
    """A new time-ordered id, in the 8-4-4-4-12 text form."""
    return str(uuid7())
