"""The newcomer's path: `vigil demo --no-stack` prints the console URL first, and the page at it
shows the vector DB's breaker trip and recover, the alerts arrive and a trace tree.

The demo runs as a user runs it (its own process), at scale 0.15: its outage starts ~1.2 s in
and the breaker is closed again ~4.5 s later. The screenshot taken while the breaker is open is
the README's (docs/console.png is a copy of it).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import Browser, artifact_path, requires_chromium

pytestmark = requires_chromium
STARTUP = 30.0  # seconds for the demo process to print its console URL
STORY = 25.0  # seconds for the breaker to open and close again (it takes ~6 s at scale 0.15)


@dataclass
class Demo:
    """The running `vigil demo` process and the lines it printed on stderr."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    printed: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("vigil demo: console"):
                self.printed.set()
        self.printed.set()  # the process ended: whatever it printed is all there is

    @property
    def console_url(self) -> str:
        (line,) = [line for line in self.lines if line.startswith("vigil demo: console")]
        return line.split()[3]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """`vigil demo --no-stack` on a free port, stopped with SIGTERM (by its pid) at the end."""
    argv = [sys.executable, "-m", "vigil_exporter.cli", "demo", "--no-stack", "--port", "0",
            "--scale", "0.15", "--seed", "7", "--duration", "60", "--progress-interval", "5",
            "--log-file", str(tmp_path / "demo.log"), "--state-dir", str(tmp_path / "state")]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               text=True)
    running = Demo(process)
    reader = threading.Thread(target=running.read, daemon=True)
    reader.start()
    try:
        assert running.printed.wait(STARTUP), "the demo printed no console URL"
        assert process.poll() is None, "\n".join(running.lines)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        reader.join(5)


def test_the_demo_console_shows_the_breaker_trip_and_recover(browser: Browser,
                                                              demo: Demo) -> None:
    """The console URL is the demo's first line; its page shows the vector_db breaker open
    (screenshot for the README), the breaker's alert, then the breaker closed again, and a
    trace from the list (refresh paused) opens as a span tree."""
    ours = [line for line in demo.lines if line.startswith("vigil demo:")]
    assert ours[0].startswith("vigil demo: console      http://127.0.0.1:")
    driver = browser.driver
    driver.get(demo.console_url + "?refresh=300")

    def breaker_state() -> str | None:
        cards = driver.find_elements(By.CSS_SELECTOR, '[data-breaker="vector_db"]')
        return cards[0].get_attribute("data-state") if cards else None

    browser.wait_for(lambda: breaker_state() == "open", "vector_db to show open", STORY)
    browser.wait_for(lambda: any("vector_db" in row.text for row in driver.find_elements(
        By.CSS_SELECTOR, '#alert-list tr[data-status="firing"]')), "the breaker's alert")
    driver.save_screenshot(str(artifact_path("console.png")))
    browser.wait_for(lambda: breaker_state() == "closed", "vector_db to close again", STORY)
    caption = driver.find_element(By.CSS_SELECTOR, '[data-breaker="vector_db"] figcaption')
    rejected = re.search(r"(\d+) rejected", caption.text)
    assert rejected is not None, caption.text
    assert int(rejected.group(1)) > 0  # the calls refused while it was open, in the sparkline
    # The demo keeps tracing: pause the refresh so the list holds still while a row is picked.
    driver.find_element(By.ID, "pause").click()
    browser.wait_for(lambda: driver.find_element(By.ID, "status").get_attribute("data-state")
                     == "paused", "the page to pause")
    nested = browser.wait_for(lambda: [row for row in driver.find_elements(
        By.CSS_SELECTOR, "#trace-list tr[data-trace-row]")
        if int(row.find_element(By.CSS_SELECTOR, "td:nth-child(3)").text) > 1],
        "a trace of several spans")
    nested[0].find_element(By.CSS_SELECTOR, "a.trace-link").click()
    browser.wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, '.span-row[data-depth="1"]'),
                     "the trace's child spans")
    assert driver.find_elements(By.CSS_SELECTOR, '.span-row[data-depth="0"]')
