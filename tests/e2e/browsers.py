"""Debian's Chromium driven by Playwright, for the browser tests, and where they keep
their screenshots.

Only ``/usr/bin/chromium`` is used, never a downloaded browser; without it the tests skip,
saying why, except under ``CI``, where they must run and so fail. Screenshots go to
``test-artifacts/screenshots/`` at the top of the checkout (``NUMIDENT_ARTIFACTS`` moves the
``test-artifacts`` folder), which CI keeps as the run's artefacts and git ignores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Playwright, ViewportSize, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Debian's build, never a downloaded one; no profile, network chatter or updates of its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


def screenshots() -> Path:
    """The folder the browser tests' screenshots are kept in (created)."""
    root = Path(os.environ.get("NUMIDENT_ARTIFACTS")
                or Path(__file__).resolve().parents[2] / "test-artifacts")
    folder = root / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, once Debian's Chromium is known to be there."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (Debian's chromium package; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests must run in CI: {reason}")
        print(f"skipping the browser tests: {reason}")
        pytest.skip(reason)
    with sync_playwright() as running:
        yield running


def launch(playwright: Playwright, profile: Path, viewport: ViewportSize) -> BrowserContext:
    """A headless Chromium from the empty profile folder ``profile``."""
    # headless=True makes Playwright pass --headless; a user-data-dir means a persistent context
    context = playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport=viewport, locale="en-GB")
    context.set_default_timeout(15_000)
    return context
