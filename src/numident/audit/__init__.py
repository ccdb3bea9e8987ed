"""The tamper-evident audit trail shared by both sides (docs/audit.md).

``chain`` (the pure rules: canonical records, their SHA-256 links, the walk that finds the
first broken link) -> ``log`` (which table of which side is chained, its extra columns) ->
``sealer`` (assigns sequence numbers and hashes to rows written unsealed, in small batches
under a database lock) and ``checkpoints`` (the signed head, as a JWT) -> ``verify`` (walks
a database's chain) and ``bundle`` (the regulator's export, verified offline).

Writers only insert: an entry is written with no ``seq`` and no ``hash`` in the writer's own
transaction, and the sealer chains it shortly after it commits, so no request waits for the
chain's lock.
"""
