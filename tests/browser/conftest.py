"""A headless Chromium (the Debian package `chromium`, /usr/bin/chromium) driven by
Playwright for the browser tests; they skip, saying why, when either is missing
(`.ci/run` installs the package, so CI never skips). `playwright install` is never run:
the browser is the system's."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("BASTION_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per test module, stopped after it: Playwright's sync API
    keeps an event loop running on the main thread while it is started, and the tests
    that drive an asyncio loop themselves (tests/service/test_http_front.py) must not
    find one."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} not found: install the Debian package `chromium` "
            "(apt-get install chromium; .ci/run does)"
        )
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 (optional dev dependency)
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
    except Exception as error:
        playwright.stop()
        pytest.skip(f"{CHROMIUM} did not start under Playwright: {error}")
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (its own sessionStorage) and page per test; the page's
    console errors and failed requests to other hosts are collected on it."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.console_errors = []
    tab.on("console", lambda m: tab.console_errors.append(m.text) if m.type == "error" else None)
    try:
        yield tab
    finally:
        context.close()
