"""The CAMARA APIs' tests run on the operator gateway's harness (tests/integration/operator)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from operator_harness import make_gateway

__all__ = ["make_gateway"]
