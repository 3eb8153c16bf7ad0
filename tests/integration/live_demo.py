"""Data for every dashboard query: the agent-studio demo playing in this process, served live.

``tests/integration/test_dashboards.py`` (against Prometheus) and
``tests/integration/test_victoriametrics.py`` (against VictoriaMetrics behind ``remote_write``)
both need a vigil exporter whose metrics make each panel show something real. This module
holds that part and the check itself:

- :func:`playing_demo`: the exporter serving vigil's process-wide registry and, from
  ``play()``, the demo at ``scale=0.3`` recording into it (its minute-long story in about 18 s:
  a breaker opening and recovering, runaway agents raising critical errors, the embedding
  brownout with retry give-ups) with the resource sampler every second;
- :func:`wait_for_every_query`: poll a Prometheus-compatible query API until each panel query
  of the generated dashboards has returned a finite, non-zero value, against a deadline.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboards.model import (
    PanelQuery,
    VariableQuery,
    load_dashboards,
    panel_queries,
    variable_queries,
)
from dashboards.queries import TEST_VARIABLES, expand

import vigil
import vigil.config
from tests.integration.conftest import prom_query
from vigil_exporter.server import ExporterHandle, start_exporter

SCALE = 0.3
DASHBOARDS = load_dashboards()
QUERIES: list[PanelQuery] = [query for dash in DASHBOARDS.values()
                             for query in panel_queries(dash)]


@dataclass
class Demo:
    """The exporter serving the demo's metrics; :meth:`play` starts the story."""

    exporter: ExporterHandle
    play: Callable[[], None]
    errors: list[BaseException] = field(default_factory=list)

    @property
    def target(self) -> str:
        """The exporter's host:port, as a scrape target."""
        return str(self.exporter.url).split("://", 1)[-1].rstrip("/")


@contextmanager
def playing_demo(tmp_path: Path) -> Iterator[Demo]:
    """The exporter serving vigil's registry at once; the demo (recording in a thread) and the
    resource sampler from ``play()``, which the caller calls once its servers scrape."""
    from vigil_demo.agent_studio import AgentStudioDemo  # its decorators register demo series

    # The demo repeats a few alert messages. With the default 60 s de-duplication the first of
    # each is dispatched before the first scrape and the next a minute later, so "vigil alerts
    # dispatched" (a rate) would stay 0 for the whole test: dispatch them all.
    before = vigil.config.get_config()
    vigil.configure({"monitoring": {"alerts": {"dedup_window": 0}}})
    stop = threading.Event()
    exporter: ExporterHandle | None = None
    sampler_started = False
    threads: list[threading.Thread] = []
    try:
        with open(tmp_path / "demo.log", "w", encoding="utf-8") as log, \
                AgentStudioDemo(scale=SCALE, seed=7, log_stream=log) as demo:
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    demo.run(None, stop)
                except BaseException as exc:  # reported by the test, not lost in the thread
                    errors.append(exc)

            def play() -> None:
                nonlocal sampler_started
                assert not threads, "the demo is already playing"
                sampler_started = vigil.performance_monitor.start_monitoring(1.0)
                threads.append(threading.Thread(target=run, name="agent-studio-demo",
                                                daemon=True))
                threads[0].start()

            try:
                exporter = start_exporter(port=0)
                yield Demo(exporter, play, errors)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(15)
    finally:
        if sampler_started:
            vigil.performance_monitor.stop_monitoring()
        if exporter is not None:
            exporter.stop()
        vigil.configure(before)


def shows_something(result: list[dict[str, Any]]) -> bool:
    """Whether an instant-query result has a finite, non-zero value."""
    for series in result:
        value = float(series["value"][1])
        if math.isfinite(value) and value != 0:
            return True
    return False


def label_values(base_url: str, label: str, selector: str) -> list[str]:
    """``/api/v1/label/<label>/values?match[]=<selector>``: what Grafana's label_values asks."""
    query = urllib.parse.urlencode({"match[]": selector})
    with urllib.request.urlopen(f"{base_url}/api/v1/label/{label}/values?{query}",
                                timeout=5) as response:
        body: dict[str, Any] = json.load(response)
    assert body["status"] == "success", body
    values: list[str] = body["data"]
    return values


def variable_values(base_url: str) -> Iterator[tuple[VariableQuery, list[str]]]:
    """Each dashboard variable with the values its label_values query gets from ``base_url``
    (the test values substituted), asserting there are some."""
    for dash in DASHBOARDS.values():
        for variable in variable_queries(dash):
            selector = expand(variable.selector or "up", TEST_VARIABLES)
            values = label_values(base_url, variable.label, selector)
            assert values, f"{variable.dashboard} ${variable.name}: no {variable.label} values"
            yield variable, values


def wait_for_every_query(base_url: str, demo: Demo, deadline: float,
                         explain: Callable[[], str] = lambda: "",
                         queries: Sequence[PanelQuery] = QUERIES) -> float:
    """Poll ``base_url``'s query API until every query has shown data; the seconds it took.

    A query counts once it has returned a non-empty result with at least one finite, non-zero
    value (so a panel shows something real, not only zeros or NaN from an idle histogram). On
    failure the message lists the queries that returned nothing, those that returned only zeros
    or NaN, and ``explain()`` (e.g. the rules failing in Prometheus).
    """
    started = time.monotonic()
    pending = {query.name: query for query in queries}
    assert len(pending) == len(queries), "two queries share a panel id and refId"
    answered: set[str] = set()  # returned a non-empty result, if only zeros or NaN
    end = started + deadline
    while pending and time.monotonic() < end and not demo.errors:
        for name, query in list(pending.items()):
            result = prom_query(base_url, query.expanded())
            if result:
                answered.add(name)
            if shows_something(result):
                del pending[name]
        if pending:
            time.sleep(0.5)  # polling the query API against the deadline above
    assert not demo.errors, f"the demo crashed: {demo.errors[0]!r}"
    empty = [q for name, q in pending.items() if name not in answered]
    zeros = [q for name, q in pending.items() if name in answered]
    assert not pending, (
        f"{len(pending)} of {len(queries)} panel queries showed no data from {base_url} within "
        f"{deadline:.0f}s\nreturned nothing:\n"
        + "".join(f"  {q.name}: {q.expanded()}\n" for q in empty)
        + "returned only zeros or NaN:\n"
        + "".join(f"  {q.name}: {q.expanded()}\n" for q in zeros)
        + explain())
    return time.monotonic() - started
