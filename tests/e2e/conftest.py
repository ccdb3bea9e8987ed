"""Fixtures of the end-to-end tests: Playwright's driver for the browser tests (browsers)."""

from __future__ import annotations

from browsers import playwright

__all__ = ["playwright"]
