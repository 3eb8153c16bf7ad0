"""Browser tests drive Debian's headless Chromium with Selenium through Debian's chromium-driver.

./run test installs both packages, so in CI these tests always run; a developer without them
sees them skipped with the reason instead of failing on a missing binary (the rule of
tests/integration/conftest.py for Prometheus). The driver's path is given to Selenium, so
Selenium Manager never looks for (or downloads) a browser.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"  # git-ignored: screenshots of the last run
SCREENSHOT_DIR_ENV = "VIGIL_TEST_ARTIFACTS"  # a folder for the screenshots instead
WAIT = 10.0  # real seconds a DOM condition may take before the test fails (polled, not slept)
T = TypeVar("T")


def _find(command: str, fallback: str) -> str | None:
    found = shutil.which(command)
    if found is not None:
        return found
    return fallback if os.access(fallback, os.X_OK) else None


CHROMIUM = _find("chromium", "/usr/bin/chromium")
CHROMEDRIVER = _find("chromedriver", "/usr/bin/chromedriver")
requires_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromium-driver are not installed (./run test installs them)")


def artifact_path(name: str) -> Path:
    """Where a test writes the artefact ``name`` (``$VIGIL_TEST_ARTIFACTS`` or
    tests/artifacts/), the folder made if needed."""
    folder = Path(os.environ.get(SCREENSHOT_DIR_ENV) or ARTIFACTS)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


class Browser:
    """A headless Chromium and what it logged: network requests and console messages."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1440,1000",
                         "--no-first-run", "--disable-extensions", "--disable-sync",
                         "--disable-background-networking", "--disable-default-apps",
                         "--disable-component-update", "--lang=en-US"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.requests: list[str] = []  # every URL the page asked the network for
        self.console: list[dict[str, Any]] = []  # console messages (CSP violations, errors)

    def drain_logs(self) -> None:
        """Move what Chromium logged since the last call into :attr:`requests` and
        :attr:`console`."""
        for entry in self.driver.get_log("performance"):  # type: ignore[no-untyped-call]
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
        self.console.extend(self.driver.get_log("browser"))  # type: ignore[no-untyped-call]

    def wait_for(self, condition: Callable[[], T | None], what: str,
                 timeout: float = WAIT) -> T:
        """Poll ``condition`` (read from the DOM) until it gives something truthy; fail with
        ``what`` after ``timeout`` seconds. Exceptions of a DOM caught mid-redraw retry."""
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
        )

        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                value = condition()
                if value:
                    return value
                last = value
            except (StaleElementReferenceException, NoSuchElementException) as err:
                last = err
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} "
                                     f"(last: {last!r})")
            time.sleep(0.05)  # DOM polling against a deadline, not waiting out a timeout

    def close(self) -> None:
        self.driver.quit()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module."""
    opened = Browser()
    try:
        yield opened
    finally:
        opened.close()
