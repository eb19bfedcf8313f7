"""Browser tests: Playwright (sync API) driving Debian's chromium against ``live_stack``.

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium``
(``make test`` installs it through scripts/ensure_chromium.sh). Every page a test opens is
watched: an uncaught exception or a console error fails the test, unless the test said it
expects that exact error (an API refusal the page is meant to show). Screenshots go to
``var/test-artifacts/screenshots/``.
"""

import importlib
import os
import re
import time
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import expect

from testsupport.outcome import outcome_failed
from testsupport.stack import ARTIFACTS

# Live updates cross three processes (gunicorn → matcher → daphne); give them time on a
# loaded two-core machine.
expect.set_options(timeout=10_000)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = ARTIFACTS / "screenshots"
TRAIL_LENGTH = 300
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


class ConsoleGuard:
    """Collects console errors and page errors of every page in a browser context."""

    def __init__(self):
        self.errors: list[str] = []
        self.allowed: list[re.Pattern] = []
        self.trail: list[str] = []
        self.started = time.monotonic()

    def watch(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("websocket", self._websocket)

    def _note(self, text: str) -> None:
        # What a failing test's report shows of the pages' side (the servers' logs are the
        # live stack's): recent enough to cover the test's last steps.
        self.trail.append(f"{time.monotonic() - self.started:8.3f} {text[:400]}")
        del self.trail[:-TRAIL_LENGTH]

    def _websocket(self, socket) -> None:
        url = socket.url
        self._note(f"ws open {url}")
        socket.on("framesent", lambda payload: self._note(f"ws > {payload}"))
        socket.on("framereceived", lambda payload: self._note(f"ws < {payload}"))
        socket.on("socketerror", lambda error: self._note(f"ws error {url}: {error}"))
        socket.on("close", lambda _socket: self._note(f"ws closed {url}"))

    def _console(self, message) -> None:
        self._note(f"console {message.type}: {message.text}")
        if message.type == "error":
            url = (message.location or {}).get("url", "")
            self.errors.append(f"console error: {message.text} ({url})")

    def allow(self, pattern: str) -> None:
        """Expect a console error matching ``pattern`` (e.g. Chrome's line for a 422)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


@pytest.fixture
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_chromium.sh (make test does).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the tests make
    # between browser steps are still plain synchronous calls, so Django may allow them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        # Once Playwright has started, the test's ORM calls run in another contextvars
        # context than the fixtures set up before it, and Django's connections are
        # context-local: they open a connection of their own. Close it here, in that context:
        # left open, it kept the live stack's teardown waiting 10 s for the database's
        # sessions to end, and the test database from being dropped at the end of the run.
        connections.close_all()
        instance.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def console():
    return ConsoleGuard()


@pytest.fixture
def new_page(browser, live_stack, console, request):
    """``new_page()`` → a page in a fresh browser context (its own cookies), watched. A test
    that fails prints its pages' last console lines and WebSocket frames."""
    contexts = []

    def make(viewport=DESKTOP):
        context = browser.new_context(viewport=viewport, base_url=live_stack.web_url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        console.watch(page)
        return page

    yield make
    if outcome_failed(request):
        print("----- the pages' console and WebSocket frames, seconds since the first page -----")
        print("\n".join(console.trail))
    for context in contexts:
        context.close()
    assert not console.unexpected(), "\n".join(console.unexpected())


def screenshot(page, name: str) -> list[Path]:
    """Full-page screenshots at desktop and phone width; back to desktop afterwards."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.wait_for_timeout(300)  # let the chart and the grid settle at the new width
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
        if label == "phone":
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at phone width"
    page.set_viewport_size(DESKTOP)
    return paths


def operators_group_restore() -> None:
    """Make the "operators" group again, as its migrations do (idempotent): a test that
    empties the database (a transactional one, earlier in the run) drops it."""
    from django.apps import apps

    importlib.import_module("accounts.migrations.0004_operators_group").create_operators(apps, None)
    importlib.import_module("accounts.migrations.0007_withdrawal_controls_permissions").grant(
        apps, None
    )
