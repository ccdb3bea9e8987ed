"""Each chained table's hash covers every column of its content."""

from __future__ import annotations

import pytest

from numident.audit.log import AuditLog, audit_logs

CHAINS = [*audit_logs("operator"), *audit_logs("messenger")]


@pytest.mark.parametrize("chain", CHAINS, ids=lambda chain: chain.name)
def test_the_hash_covers_every_column_but_the_chains_own(chain: AuditLog) -> None:
    """A column added to an audit table without its place in the content would be
    editable without the chain noticing."""
    own = {"id", "seq", "hash"}
    assert set(chain.content) == {c.name for c in chain.table.columns} - own


def test_every_chain_has_its_own_name_checkpoints_and_lock() -> None:
    """Two chains sharing checkpoints, a lock or a name would mix their heads: a checkpoint
    of one would be read against the other."""
    assert [chain.name for chain in CHAINS] == ["operator", "messenger", "messenger-possession"]
    assert [chain.table.name for chain in CHAINS] == ["audit", "account_audit",
                                                      "possession_audit"]
    assert len({chain.checkpoints.name for chain in CHAINS}) == 3
    assert len({chain.lock_key for chain in CHAINS}) == 3
