"""``numident`` with the ``otel`` extra made unimportable: run as ``python without_otel.py ARGS``.

The tests install the extra, so this is how a test sees a server installed without it. Only the
extra's packages are refused: ``opentelemetry-api`` stays, as FastAPI itself requires it.
"""

from __future__ import annotations

import importlib.abc
import sys

EXTRA_PACKAGES = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.instrumentation")


class BlockTheOtelExtra(importlib.abc.MetaPathFinder):
    """Refuses every module of the extra's packages as if they were not installed."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if any(fullname == p or fullname.startswith(f"{p}.") for p in EXTRA_PACKAGES):
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


if __name__ == "__main__":
    sys.meta_path.insert(0, BlockTheOtelExtra())
    from numident.cli.entry import main

    sys.argv[0] = "numident"
    main()
