"""Fixtures of the operator gateway's integration tests (see operator_harness)."""

from __future__ import annotations

from operator_harness import make_gateway

__all__ = ["make_gateway"]
