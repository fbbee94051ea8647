"""The real headless Chromium the page tests drive (Debian's ``chromium``, through Playwright).

Where no browser is installed the tests skip with the reason; with ``CI=true`` the browser is required.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM = os.environ.get("SMSNEXUS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def unavailable(reason: str) -> None:
    """Skip the test for ``reason``, or fail it on CI, where the browser tests are required."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; the browser test is required in CI (.ci/run installs chromium)")
    pytest.skip(reason)


@contextmanager
def chromium(*, show_scrollbars: bool = False) -> Iterator[Any]:
    """
    A launched headless Chromium (a Playwright ``Browser``), closed on the way out.

    :param show_scrollbars: draw scrollbars as a desktop browser does (Playwright hides them in headless mode).
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    if not os.path.exists(CHROMIUM):
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    hidden = ["--hide-scrollbars"] if show_scrollbars else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=LAUNCH_FLAGS, headless=True, ignore_default_args=hidden
        )
        try:
            yield browser
        finally:
            browser.close()
