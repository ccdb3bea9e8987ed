"""Fault scenarios: real numident processes on loopback, bounded in count and time.

They reuse the end-to-end helpers (servers started with the CLI) from ``tests/e2e``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
