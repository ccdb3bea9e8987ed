"""Fixtures of the audit chain's integration tests (see audit_fixtures)."""

from __future__ import annotations

from audit_fixtures import engine_for, key

__all__ = ["engine_for", "key"]
