"""The HTML console in a real headless Chromium, against a real exporter on 127.0.0.1.

The exporter holds a breaker forced open (with rejected calls), an application alert and an
Alertmanager alert (dead-lettered by a failing handler), log lines written inside a nested
trace, and a monitored function. Every check reads the rendered DOM, polling with deadlines.
The page refreshes every 300 ms here (``?refresh=300``) so the tests take seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from tests.browser.conftest import Browser, artifact_path, requires_chromium
from vigil.config import ExporterSettings
from vigil.error_handling.breaker import CircuitBreaker
from vigil.error_handling.errors import CircuitOpenError
from vigil.monitoring.alerts import Alert, AlertManager
from vigil.monitoring.logs import StructuredLogger
from vigil.monitoring.metrics import PerformanceMonitor, monitor_performance
from vigil.monitoring.tracing import ExecutionTracer, trace_context
from vigil.testing import FakeClock
from vigil_exporter.app import create_app
from vigil_exporter.server import ExporterHandle, start_exporter

pytestmark = requires_chromium

FIRING = (Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"
          / "firing.json").read_bytes()
HOSTILE = '<img src=x id=pwned onerror="document.title=1">&amp; <b>bold</b>'


@dataclass
class Rig:
    """The exporter under test and what it was given."""

    handle: ExporterHandle
    alerts: AlertManager
    breaker: CircuitBreaker
    logger: StructuredLogger
    trace_id: str
    children: tuple[str, ...]
    tracer: ExecutionTracer

    @property
    def url(self) -> str:
        return self.handle.url + "/?refresh=300"


def _serve(tmp: Path, alerts: AlertManager, registry: CollectorRegistry,
           tracer: ExecutionTracer, monitor: PerformanceMonitor) -> ExporterHandle:
    # One attempt per webhook delivery: a failing handler dead-letters at once.
    settings = ExporterSettings(delivery_max_attempts=1)
    app = create_app(settings=settings, registry=registry, alert_manager=alerts, tracer=tracer,
                     monitor=monitor, state_dir=str(tmp))
    return start_exporter(port=0, host="127.0.0.1", app=app, settings=settings)


def _failing_webhook_handler(alert: Alert) -> None:
    if alert.source == "alertmanager":
        raise RuntimeError("pager unreachable")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """An exporter with a forced-open breaker, alerts, logs in a nested trace, a function."""
    registry = CollectorRegistry()
    alerts = AlertManager(registry=registry)
    alerts.register_handler(_failing_webhook_handler)
    tracer = ExecutionTracer(registry=registry)
    monitor = PerformanceMonitor(registry=registry)
    logger = StructuredLogger("shop.checkout", registry=registry, stream=io.StringIO())
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=300.0,
                             name="payments-api", clock=FakeClock(), registry=registry,
                             alert_manager=alerts)
    breaker.force_open(300.0)

    @monitor_performance("checkout.charge", monitor=monitor)
    def charge(amount: float) -> float:
        return amount * 1.2

    with trace_context("Checkout", "place_order", {"order": "A-17", "password": "hunter2"},
                       tracer=tracer):
        with trace_context("Payments", "charge_card", tracer=tracer):
            charge(10.0)
            logger.info("card charged", {"amount": 12.0})
        with trace_context("Inventory", "reserve_items", tracer=tracer), \
                trace_context("Inventory", "lock_row", tracer=tracer):
            logger.warning("stock low", {"sku": "X-1"})
        logger.error(HOSTILE)
    trace_id = logger.get_recent_logs(1)[0]["trace_id"]  # the W3C trace id (32 hex)
    handle = _serve(tmp_path_factory.mktemp("console-store"), alerts, registry, tracer, monitor)
    try:
        # The application alert: the breaker's own, sent when it opened (above). The
        # Alertmanager alert through the webhook, as Alertmanager posts it.
        request = urllib.request.Request(handle.url + "/alertmanager/webhook", data=FIRING,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.load(answer)["alerts"] == 1
        yield Rig(handle, alerts, breaker, logger, trace_id,
                  ("Payments.charge_card", "Inventory.reserve_items", "Inventory.lock_row"),
                  tracer)
    finally:
        handle.stop()
        alerts.close()


def _opened(browser: Browser, rig: Rig) -> Browser:
    """The console on the overview, its breakers drawn."""
    if browser.driver.current_url != rig.url:
        browser.driver.get(rig.url)
    browser.wait_for(lambda: browser.driver.find_elements(By.CSS_SELECTOR, "[data-breaker]"),
                     "the breaker cards")
    return browser


def _card(browser: Browser, name: str) -> WebElement:
    return browser.driver.find_element(By.CSS_SELECTOR, f'[data-breaker="{name}"]')


def attr(element: WebElement, name: str) -> str:
    """An element's attribute, "" when it has none."""
    return element.get_attribute(name) or ""


def _texts(browser: Browser, selector: str) -> list[str]:
    return [e.text for e in browser.driver.find_elements(By.CSS_SELECTOR, selector)]


# --- what the page shows ----------------------------------------------------------------------


def test_the_forced_open_breaker_shows_as_open_with_its_probe_time(browser: Browser,
                                                                   rig: Rig) -> None:
    """The forced-open breaker's card says open in words and colour and counts down to its
    next probe; rejected calls made while the page watches reach its sparkline."""
    _opened(browser, rig)
    card = _card(browser, "payments-api")
    assert attr(card, "data-state") in ("open", "forced_open")
    assert {"tone-bad", "tone-forced"} & set(attr(card, "class").split())
    assert browser.wait_for(lambda: "next probe in" in _card(browser, "payments-api").text,
                            "the probe countdown")
    badge = card.find_element(By.CSS_SELECTOR, ".badge")
    assert badge.text in ("open", "forced open")
    assert badge.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
    for _ in range(3):
        with contextlib.suppress(CircuitOpenError):
            rig.breaker.call(lambda: None)
    browser.wait_for(lambda: "3 rejected" in _card(browser, "payments-api").find_element(
        By.CSS_SELECTOR, "figcaption").text, "the sparkline to count the 3 rejections")
    assert browser.driver.find_elements(By.CSS_SELECTOR,
                                        '[data-breaker="payments-api"] rect.spark-rejected')


def test_alerts_show_both_sources_with_their_delivery_state(browser: Browser, rig: Rig) -> None:
    """The breaker's application alert and the Alertmanager alert are listed firing; the
    webhook alert, which the failing handler gave up on, says dead-lettered."""
    _opened(browser, rig)
    browser.wait_for(lambda: any("payments-api" in t and "firing" in t
                                 for t in _texts(browser, '#alert-list tr[data-source="vigil"]')),
                     "the breaker's alert")
    row = browser.wait_for(
        lambda: [r for r in browser.driver.find_elements(
            By.CSS_SELECTOR, '#alert-list tr[data-source="alertmanager"]')
            if "dead-lettered" in r.text], "the dead-lettered Alertmanager alert")[0]
    assert "DemoErrors" in row.text
    assert "firing" in row.text
    assert "1 dead-lettered" in browser.driver.find_element(By.ID, "delivery-summary").text


def test_functions_show_calls_and_latency(browser: Browser, rig: Rig) -> None:
    """The monitored function's row has its call count, no errors and a p95 in ms."""
    _opened(browser, rig)
    row = browser.wait_for(lambda: browser.driver.find_elements(
        By.CSS_SELECTOR, '#function-list tr[data-function="checkout.charge"]'), "the row")[0]
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[:4] == ["checkout.charge", "1", "0", "0.0"]
    assert cells[5].endswith("ms")


def test_untrusted_strings_are_shown_as_text(browser: Browser, rig: Rig) -> None:
    """A log message holding HTML shows as its literal characters: no element, no script."""
    _opened(browser, rig)
    browser.wait_for(lambda: any(HOSTILE in t for t in _texts(browser, "#log-list td.msg")),
                     "the hostile message as text")
    assert not browser.driver.find_elements(By.ID, "pwned")
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "#log-list b")
    assert browser.driver.title != "1"


def test_log_filters_by_level_and_trace_id(browser: Browser, rig: Rig) -> None:
    """Level WARNING keeps the warning and the error; a trace id prefix keeps that trace's
    lines; clearing both shows the info line again."""
    _opened(browser, rig)
    Select(browser.driver.find_element(By.ID, "log-level")).select_by_visible_text("WARNING")
    levels = "#log-list tr[data-level] td:nth-child(2)"
    browser.wait_for(lambda: (shown := set(_texts(browser, levels)))
                     and shown <= {"WARNING", "ERROR", "CRITICAL"} and "WARNING" in shown,
                     "only WARNING and above")
    Select(browser.driver.find_element(By.ID, "log-level")).select_by_visible_text("any")
    field = browser.driver.find_element(By.ID, "log-trace")
    field.send_keys(rig.trace_id[:12])
    browser.wait_for(lambda: (rows := browser.driver.find_elements(
        By.CSS_SELECTOR, "#log-list tr[data-level]")) and all(
        attr(r, "data-trace") == rig.trace_id for r in rows) and len(rows) == 3,
        "the trace's three lines only")
    field.clear()
    field.send_keys(Keys.BACKSPACE)  # an input event with the field empty
    browser.wait_for(lambda: any("card charged" in t for t in _texts(browser, "#log-list td.msg")),
                     "every line again")


def test_a_log_lines_trace_link_opens_the_waterfall(browser: Browser, rig: Rig) -> None:
    """Following a log line's trace link shows the trace's span tree: the root and its child
    spans, nested, with durations; a span's details open from the keyboard and show its
    metadata redacted; Escape goes back to the overview."""
    _opened(browser, rig)
    link = browser.wait_for(lambda: [a for a in browser.driver.find_elements(
        By.CSS_SELECTOR, "#log-list tr[data-level] a.trace-link")
        if attr(a, "href").endswith("#/trace/" + rig.trace_id)], "a trace link")[0]
    link.click()
    browser.wait_for(lambda: browser.driver.find_element(By.ID, "trace-view").is_displayed(),
                     "the trace page")
    rows = browser.wait_for(lambda: browser.driver.find_elements(By.CSS_SELECTOR, ".span-row"),
                            "the waterfall rows")
    names = {r.find_element(By.CSS_SELECTOR, ".span-name").text: int(attr(r, "data-depth"))
             for r in rows}
    assert names == {"Checkout.place_order": 0, "Payments.charge_card": 1,
                     "Inventory.reserve_items": 1, "Inventory.lock_row": 2}
    for row in rows:
        assert row.find_element(By.CSS_SELECTOR, ".span-ms").text.endswith(("ms", "s"))
        assert row.find_element(By.CSS_SELECTOR, ".bar").size["width"] >= 1
    assert len(browser.driver.find_elements(By.CSS_SELECTOR, "#trace-logs tr[data-level]")) == 3
    root = browser.driver.find_element(By.CSS_SELECTOR, '.span-row[data-depth="0"] .span-toggle')
    root.send_keys(Keys.ENTER)  # a button: Enter opens it
    details = browser.wait_for(lambda: browser.driver.find_elements(
        By.CSS_SELECTOR, ".span-row .span-details"), "the span's details")[0]
    assert "A-17" in details.text
    assert "hunter2" not in details.text
    assert "[REDACTED]" in details.text
    browser.driver.save_screenshot(str(artifact_path("console-trace.png")))
    browser.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    browser.wait_for(lambda: browser.driver.find_element(By.ID, "overview").is_displayed(),
                     "the overview again")


def test_keyboard_focus_survives_a_refresh_that_redraws(browser: Browser, rig: Rig) -> None:
    """Focus on a trace link stays on that trace's link when a new trace redraws the list
    (a keyboard user is not thrown back to the top every few seconds)."""
    _opened(browser, rig)
    selector = f'#trace-list a[data-focus-key="trace:{rig.trace_id}"]'
    browser.wait_for(lambda: browser.driver.find_elements(By.CSS_SELECTOR, selector),
                     "the trace's link")
    browser.driver.execute_script("document.querySelector(arguments[0]).focus()", selector)
    before = len(browser.driver.find_elements(By.CSS_SELECTOR, "#trace-list tr[data-trace-row]"))
    with trace_context("Checkout", "another_order", tracer=rig.tracer):
        pass
    browser.wait_for(lambda: len(browser.driver.find_elements(
        By.CSS_SELECTOR, "#trace-list tr[data-trace-row]")) == before + 1, "the new trace")
    focused = browser.driver.switch_to.active_element
    assert attr(focused, "data-focus-key") == f"trace:{rig.trace_id}"
    assert focused.tag_name == "a"


def test_the_page_updates_when_the_breaker_closes(browser: Browser, rig: Rig) -> None:
    """cb.reset() on the server: the card turns closed within a few refreshes, the countdown
    goes, and a screenshot of the page is kept as a test artefact."""
    _opened(browser, rig)
    rig.breaker.reset()
    browser.wait_for(lambda: attr(_card(browser, "payments-api"), "data-state")
                     == "closed", "the breaker to show closed")
    card = _card(browser, "payments-api")
    assert "tone-ok" in attr(card, "class")
    assert "next probe" not in card.text
    # Other tests' breakers may be alive in this process: the title counts the open cards.
    still_open = len(browser.driver.find_elements(
        By.CSS_SELECTOR, '[data-state="open"], [data-state="forced_open"]'))
    assert browser.driver.title == (f"({still_open} open) vigil console" if still_open
                                    else "vigil console")
    browser.driver.save_screenshot(str(artifact_path("console-rig.png")))


def test_no_request_leaves_the_exporter_and_nothing_is_refused(browser: Browser,
                                                               rig: Rig) -> None:
    """Every request the page made (resource timing and Chromium's network log) went to the
    exporter's origin, and the console logged no error and no CSP violation."""
    _opened(browser, rig)
    browser.wait_for(lambda: browser.driver.find_elements(By.CSS_SELECTOR, "#trace-list tr"),
                     "the traces list")
    origin = rig.handle.url
    timed = browser.driver.execute_script(
        "return performance.getEntriesByType('navigation').concat("
        "performance.getEntriesByType('resource')).map(e => e.name)")
    browser.drain_logs()
    urls = [u for u in [*timed, *browser.requests] if not u.startswith(("data:", "about:"))]
    assert any(u.endswith("/console/console.js") for u in urls)
    assert any("/api/breakers" in u for u in urls)
    outside = [u for u in urls if not u.startswith(origin + "/")]
    assert outside == []
    problems = [m for m in browser.console if m["level"] in ("SEVERE", "WARNING")]
    assert problems == []


def test_the_banner_says_when_the_exporter_stops_answering(
        browser: Browser, tmp_path: Path) -> None:
    """With the exporter stopped the page keeps its last data, shows the unreachable banner
    and marks itself stale."""
    registry = CollectorRegistry()
    alerts = AlertManager(registry=registry)
    handle = _serve(tmp_path, alerts, registry, ExecutionTracer(registry=registry),
                    PerformanceMonitor(registry=registry))
    try:
        browser.driver.get(handle.url + "/?refresh=300")
        browser.wait_for(lambda: attr(browser.driver.find_element(By.ID, "status"),
                                      "data-state") == "live", "the page to go live")
        assert not browser.driver.find_element(By.ID, "banner").is_displayed()
    finally:
        handle.stop()
        alerts.close()
    banner = browser.driver.find_element(By.ID, "banner")
    browser.wait_for(banner.is_displayed, "the banner")
    assert "unreachable" in banner.text
    assert attr(banner, "data-kind") == "unreachable"
    assert attr(browser.driver.find_element(By.ID, "status"), "data-state") == "stale"
    assert "stale" in attr(browser.driver.find_element(By.TAG_NAME, "body"), "class")
    browser.drain_logs()
    browser.console.clear()  # the refused connections are logged as errors, as they should


def test_with_basic_auth_the_page_and_its_requests_carry_the_credentials(
        browser: Browser, tmp_path: Path) -> None:
    """An exporter with API basic auth: opened with the credentials, the page loads and its
    own requests get answers (no 401 banner); the JSON API without them is 401."""
    registry = CollectorRegistry()
    alerts = AlertManager(registry=registry)
    settings = ExporterSettings(api_username="dev", api_password="pa55-w0rd")
    app = create_app(settings=settings, registry=registry, alert_manager=alerts,
                     tracer=ExecutionTracer(registry=registry),
                     monitor=PerformanceMonitor(registry=registry), state_dir=str(tmp_path))
    handle = start_exporter(port=0, host="127.0.0.1", app=app, settings=settings)
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(handle.url + "/api/breakers", timeout=5)
        assert refused.value.code == 401
        url = handle.url.replace("http://", "http://dev:pa55-w0rd@") + "/?refresh=300"
        browser.driver.get(url)
        browser.wait_for(lambda: attr(browser.driver.find_element(By.ID, "status"),
                                      "data-state") == "live", "the page to go live")
        assert not browser.driver.find_element(By.ID, "banner").is_displayed()
        assert browser.driver.find_element(By.ID, "function-list").text
    finally:
        handle.stop()
        alerts.close()
