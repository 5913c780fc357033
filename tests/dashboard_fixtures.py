"""The dashboard tests' fixtures (a plugin: `pytest_plugins = ["tests.dashboard_fixtures"]`): headless
Chromium, and tabs that fail their test on any script error, dialog or Content-Security-Policy violation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.dashboard_helpers import EVENT_TIMEOUT_MS, NewPage

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1400, "height": 900}
# Every violation is reported on the console as "Refused to ..." naming the Content Security Policy;
# the page also records securitypolicyviolation events (installed before any of its scripts runs).
RECORD_CSP = """window.__csp = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"""


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[NewPage]:
    """Opens tabs, each in its own context (`new_page(color_scheme="dark")`); the test fails on an uncaught
    script error, a dialog (window.confirm / alert) or a CSP violation in any of them."""
    contexts = []
    problems: list[str] = []
    pages: list[Page] = []

    def open_page(**options: Any) -> Page:
        context = browser.new_context(**{"viewport": WIDE, **options})
        contexts.append(context)
        tab = context.new_page()
        tab.set_default_timeout(EVENT_TIMEOUT_MS)
        tab.add_init_script(RECORD_CSP)
        tab.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
        tab.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        tab.on("console", lambda m: problems.append(f"CSP: {m.text}") if "Content Security Policy" in m.text else None)
        pages.append(tab)
        return tab

    yield open_page
    for tab in pages:
        if not tab.is_closed():
            try:
                violations = tab.evaluate("window.__csp || []")
            except Exception:  # noqa: BLE001  (a tab that navigated away or crashed has nothing to say)
                violations = []
            problems.extend(f"CSP violation: {v}" for v in violations)
    for context in contexts:
        context.close()
    assert not problems, problems


@pytest.fixture
def page(new_page: NewPage) -> Page:
    """A fresh wide tab (see new_page)."""
    return new_page()
