"""The production recipe's storage: an HA pair remote-writing into a real VictoriaMetrics.

What runs: VictoriaMetrics from the Debian package (``victoria-metrics``) on loopback, with the
flags the recipe documents (``-dedup.minScrapeInterval`` = the scrape interval) plus two that
make fresh samples queryable at once (``-search.latencyOffset=0s``, ``-search.disableCache``);
both replicas of ``alerts/production/prometheus-{a,b}.yml`` (``tests/integration/recipe.py``:
addresses and timings replaced, no Alertmanager) scraping one vigil exporter every second and
remote-writing into it; and the agent-studio demo recording into that exporter
(``tests/integration/live_demo.py``, as for ``test_dashboards.py``).

Then, against VictoriaMetrics's Prometheus-compatible API (what
``dashboards/provisioning/victoriametrics/`` points Grafana at): samples arrived by remote
write from both replicas; the pair's writes are one series (the replica label is dropped
before the write), so no panel counts twice; every panel query of the generated dashboards
returns non-zero data, recording rules and ``ALERTS`` included; and the template variables
find the demo's job and target.

Timing: VictoriaMetrics 1.79 makes a new series searchable about 10 s after its first sample
(its per-hour index of series is refreshed every 10 s; new samples of known series show within
a second), so each wait here polls against a deadline well past that.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from dashboards.queries import TEST_VARIABLES

from tests.integration.conftest import prom_query, wait_until
from tests.integration.live_demo import (
    QUERIES,
    Demo,
    playing_demo,
    variable_values,
    wait_for_every_query,
)
from tests.integration.recipe import (
    REPLICAS,
    Prometheus,
    Server,
    get_text,
    metric_sum,
    prometheus_config,
)
from vigil_exporter.stack import find_prometheus

VICTORIA_METRICS = shutil.which("victoria-metrics")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(VICTORIA_METRICS is None, reason="victoria-metrics is not installed "
                       "(./run test installs the Debian package victoria-metrics)"),
    pytest.mark.skipif(find_prometheus() is None,
                       reason="prometheus is not installed (./run test installs it)"),
]

INTERVAL = "1s"
# Seconds for every query to show data: typically ~12 s after the servers are ready (the first
# scrapes, then ~10 s until VictoriaMetrics searches a new series; the demo's retry give-ups
# come ~9-12 s into its story).
DEADLINE = 75.0
WAIT = 45.0  # for the first samples to be searchable


class VictoriaMetrics(Server):
    """Single-node VictoriaMetrics on loopback with temporary storage."""

    name = "victoria-metrics"
    ready_path = "/health"

    def argv(self) -> list[str]:
        assert VICTORIA_METRICS is not None
        return [VICTORIA_METRICS, f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.work / 'data'}", "-retentionPeriod=1d",
                f"-dedup.minScrapeInterval={INTERVAL}",
                # Fresh samples visible to queries at once (the defaults hide the last 30 s).
                "-search.latencyOffset=0s", "-search.disableCache"]

    @property
    def write_url(self) -> str:
        return self.url + "/api/v1/write"

    def rows_written(self) -> float:
        """Samples ingested through the remote-write endpoint."""
        return metric_sum(get_text(self.url + "/metrics"), "vm_rows_inserted_total",
                          type="promremotewrite")


@dataclass
class Running:
    vm: VictoriaMetrics
    replicas: list[Prometheus]
    demo: Demo


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """VictoriaMetrics, the HA pair remote-writing into it, the demo they scrape."""
    tmp_path = tmp_path_factory.mktemp("victoriametrics")
    with playing_demo(tmp_path) as demo:
        vm = VictoriaMetrics(tmp_path / "vm")
        replicas = [Prometheus(tmp_path / f"prometheus-{replica}", prometheus_config(
            replica, targets=[demo.target], alertmanagers=None, remote_write_url=vm.write_url,
            interval=INTERVAL)) for replica in REPLICAS]
        servers: list[Server] = [vm, *replicas]
        try:
            for server in servers:  # all three start in parallel
                server.spawn()
            for server in servers:
                server.wait_ready()
            demo.play()
            yield Running(vm, replicas, demo)
        finally:
            for server in reversed(servers):
                server.stop()


def _remote_storage(prometheus: Prometheus, name: str) -> float:
    """A remote-write counter of ``prometheus`` (which must expose it)."""
    text = prometheus.metrics()
    metric = f"prometheus_remote_storage_{name}"
    assert f"\n{metric}{{" in text, f"{metric} is not exposed"
    return metric_sum(text, metric)


def test_both_replicas_remote_write_into_victoriametrics(running: Running) -> None:
    """Each replica of the pair sends samples to VictoriaMetrics, none fail, and it stores them."""
    vm = running.vm
    wait_until(lambda: all(_remote_storage(p, "samples_total") > 0 for p in running.replicas)
               and vm.rows_written() > 0, WAIT, "samples remote-written by both replicas")
    for prometheus in running.replicas:
        assert _remote_storage(prometheus, "samples_failed_total") == 0, prometheus.log()
    print(f"VictoriaMetrics ingested {vm.rows_written():.0f} remote-written samples")


def _series(url: str, expr: str) -> list[dict[str, Any]]:
    return [series["metric"] for series in prom_query(url, expr)]


def test_the_pair_writes_one_series_without_the_replica_label(running: Running) -> None:
    """The replicas' identical writes are one series in VictoriaMetrics: nothing counts twice."""
    url = running.vm.url
    wait_until(lambda: prom_query(url, 'up{job="vigil"} == 1'), WAIT, "up in VictoriaMetrics")
    wait_until(lambda: all(_remote_storage(p, "samples_total") > 0 for p in running.replicas),
               WAIT, "both replicas writing")
    ups = _series(url, 'up{job="vigil"}')
    assert len(ups) == 1, ups
    assert "replica" not in ups[0], ups
    assert prom_query(url, 'count({replica!=""})') == []
    [total] = prom_query(url, 'count(up{job="vigil"})')
    assert float(total["value"][1]) == 1
    # The Prometheus-compatible path Grafana may be given instead of the root answers the same.
    assert prom_query(url + "/prometheus", 'up{job="vigil"} == 1')


def test_every_panel_query_returns_data_from_victoriametrics(running: Running) -> None:
    """Each panel query of every dashboard returns non-zero data from VictoriaMetrics."""
    seconds = wait_for_every_query(running.vm.url, running.demo, DEADLINE,
                                   explain=lambda: "VictoriaMetrics log:\n"
                                   + running.vm.log()[-2000:])
    print(f"all {len(QUERIES)} panel queries showed data from VictoriaMetrics after "
          f"{seconds:.1f}s")


def test_template_variables_work_on_victoriametrics(running: Running) -> None:
    """$job and $instance get their values from VictoriaMetrics's label API, as from Prometheus."""
    url = running.vm.url
    wait_until(lambda: prom_query(url, 'up{job="vigil"} == 1'), WAIT, "up in VictoriaMetrics")
    for variable, values in variable_values(url):
        if variable.name == "job":
            assert values == [TEST_VARIABLES["job"]]
        else:
            assert values == [running.demo.target]

