"""Fixtures of the interoperability suite (see interop_gateway)."""

from __future__ import annotations

from interop_gateway import gateway, node

__all__ = ["gateway", "node"]
