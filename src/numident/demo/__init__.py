"""``numident demo``: the whole exchange on loopback, with synthetic data.

Three operator gateways (Gamma answers in deferred mode) and one messenger service run as real
HTTP servers on 127.0.0.1, each with its SQLite file and keys in its own folder: under
``<NUMIDENT_HOME>/demo`` when ``NUMIDENT_HOME`` is set, else in a temporary folder. The
walk-through identifies users, follows a ported number, is refused an unknown one, blocks an
account when its contract ends until it is identified again on a new number, records a SIM
swap, and meets an operator that is down. It prints each step and a summary, and exits 0 when
every outcome is as expected.
"""

from __future__ import annotations

from numident.demo.walkthrough import run

__all__ = ["run"]
