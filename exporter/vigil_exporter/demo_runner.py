"""``vigil demo``: the simulated application, its exporter and, when installed, the local stack.

What runs, in order: JSON logs to stdout (or ``--log-file``), the exporter on loopback (the URL
of its HTML console is the first line printed), then a Prometheus and an Alertmanager
(``stack.py``) scraping it and posting alerts back to its webhook, the resource sampler, and
the :class:`~vigil_exporter.demo.AgentStudioDemo` workload.
A progress line goes to stderr every few seconds; at the end (``--duration`` or Ctrl-C) every
child is stopped and the final report printed.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import IO

import vigil
from vigil.config import VigilConfig
from vigil_exporter.server import ExporterHandle, start_exporter
from vigil_exporter.stack import LocalStack, StackError, find_alertmanager, find_prometheus

__all__ = ["run_demo"]

# The demo's story (an outage, a breaker opening and closing) plays out in about a minute;
# Prometheus has to look often enough to see it.
DEMO_SCRAPE_INTERVAL = "2s"


def _say(out: IO[str], text: str) -> None:
    print(text, file=out, flush=True)


def _start_stack(handle: ExporterHandle, config: VigilConfig, out: IO[str]) -> LocalStack | None:
    if find_prometheus() is None:
        _say(out, "vigil demo: Prometheus/Alertmanager not found; running the exporter alone. "
                  "For the full stack: apt-get install prometheus prometheus-alertmanager "
                  "(./run demo does it when run as root).")
        return None
    settings = config.exporter
    basic = (settings.webhook_username, settings.webhook_password) \
        if settings.webhook_username else None
    stack = LocalStack(exporter_url=handle.url, webhook_url=handle.url + settings.webhook_path,
                       bearer_token=settings.webhook_bearer_token or None, basic_auth=basic,
                       scrape_interval=DEMO_SCRAPE_INTERVAL)
    try:
        stack.start(alertmanager=find_alertmanager() is not None)
    except StackError as err:
        _say(out, f"vigil demo: could not start the local stack ({err}); "
                  "running the exporter alone.")
        return None
    alerts = stack.prometheus_page("alerts")
    _say(out, f"vigil demo: Prometheus   {stack.prometheus_url}"
              + (f"  (alerts: {alerts})" if alerts else ""))
    if stack.alertmanager_url:
        _say(out, f"vigil demo: Alertmanager {stack.alertmanager_url}")
    return stack


@contextmanager
def _sigterm_sets(stop: threading.Event) -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C does (only possible from the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(config: VigilConfig, *, duration: float | None = None, port: int | None = None,
             stack: bool = True, state_dir: Path | None = None,
             log_file: Path | None = None, scale: float = 1.0,
             seed: int | None = None, progress_interval: float = 5.0,
             out: IO[str] | None = None, stop: threading.Event | None = None) -> int:
    """Run the demo until ``duration`` passes, ``stop`` is set, Ctrl-C or SIGTERM; returns 0."""
    from vigil_demo.agent_studio import AgentStudioDemo  # its decorators register demo series

    out = out if out is not None else sys.stderr
    stop = stop if stop is not None else threading.Event()
    with ExitStack() as cleanup:
        log_stream = cleanup.enter_context(open(log_file, "a", encoding="utf-8")) \
            if log_file is not None else None
        vigil.configure_logging(stream=log_stream)
        # The webhook's store: the folder asked for (or configured), else one that lives as
        # long as the demo.
        folder = str(state_dir) if state_dir is not None else (
            config.exporter.state_dir
            or cleanup.enter_context(tempfile.TemporaryDirectory(prefix="vigil-demo-")))
        settings = dataclasses.replace(config.exporter, state_dir=folder)
        handle = start_exporter(port=port, settings=settings)
        cleanup.callback(handle.stop)
        _say(out, f"vigil demo: console      {handle.url}/  (open it in a browser)")
        _say(out, f"vigil demo: metrics      {handle.url}/metrics")
        _say(out, f"vigil demo: JSON API     {handle.url}/api/breakers  (and /docs)")
        if log_file is not None:
            _say(out, f"vigil demo: JSON logs    {log_file}  (follow them with: tail -f "
                      f"{log_file}; --log-file - writes them to stdout)")
        local = _start_stack(handle, config, out) if stack else None
        if local is not None:
            cleanup.callback(local.stop)
        vigil.performance_monitor.start_monitoring()
        cleanup.callback(vigil.performance_monitor.stop_monitoring)
        demo = cleanup.enter_context(AgentStudioDemo(scale=scale, seed=seed))
        try:
            with _sigterm_sets(stop):
                demo.run(duration, stop, on_progress=lambda line: _say(out, line),
                         progress_interval=progress_interval)
        except KeyboardInterrupt:
            _say(out, "vigil demo: interrupted")
        _say(out, demo.final_report())
    vigil.configure_logging()  # the log file is closed: lines go to stdout again
    return 0
