"""Fault scenarios: real gateway processes on loopback, killed and raced on purpose.

They reuse the process helpers of the end-to-end tests (``tests/e2e/e2e_servers.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
