"""Each chained table's hash covers every column of its content."""

from __future__ import annotations

import pytest

from numident.audit.log import Side, audit_log


@pytest.mark.parametrize("side", ["operator", "messenger"])
def test_the_hash_covers_every_column_but_the_chains_own(side: Side) -> None:
    """A column added to an audit table without its place in the content would be
    editable without the chain noticing."""
    chain = audit_log(side)
    own = {"id", "seq", "hash"}
    assert set(chain.content) == {c.name for c in chain.table.columns} - own
