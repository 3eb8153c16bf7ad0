"""Metrics: the seed's ``PerformanceMonitor`` on top of prometheus_client.

Two views of the same records:

* **Local, by the seed's names.** ``increment_counter("api_calls")``,
  ``record_histogram("response_time_ms", 123.4)``: ``get_metric_stats(name)`` and
  ``get_all_metrics()`` answer from a bounded history per name (``metrics.retention_count``
  records). Stats cover the records still retained.
* **Prometheus, by conventional names**, on the monitor's registry (``.registry``): the seed
  name is sanitised (``my_function.duration`` -> ``my_function_duration``), counters get
  ``_total``, tags become labels, and a name in milliseconds is exposed in Prometheus's base
  unit, seconds (``response_time_ms``, ``x.duration_milliseconds`` -> ``..._seconds``, each
  value divided by 1000; the local view keeps what was recorded). Histogram buckets follow the
  unit (seconds, ``_bytes``, else generic). HELP is ``description=`` when the first record of
  a name gives one, else generated.

One name keeps one kind and one set of tag keys; a mismatch raises ``ValueError`` at the call
that introduced it. Label sets per metric are capped (``metrics.max_series_per_metric``).

Names, tag keys and tag values follow :mod:`vigil.text`'s rule where they enter (a lone
surrogate becomes U+FFFD, an unprintable object ``<unprintable TypeName>``), so no record can
leave the registry unrenderable. Values that would make the exposition invalid are refused with
a ``ValueError`` naming the metric and the value: a counter increment must be a finite number
>= 0, and so must a histogram observation (OpenMetrics forbids a NaN or negative ``_sum``, and
``+Inf`` would pin the sum there for good). Gauges take any number, NaN included.

``@monitor_performance(name)`` records the seed's ``name.duration_ms``, ``name.calls`` and
``name.errors`` locally, and ``vigil_function_*`` in Prometheus, with the current trace id as
an exemplar on the duration.

The module-level :data:`performance_monitor` owns the registry the exporter serves; every
built-in ``vigil_*`` metric is registered there unless a component is given another registry.

**Shape**, one module per job:

* :mod:`.naming`: a seed name's Prometheus name, label names, base unit and buckets;
* :mod:`.checks`: the value and tag-key rules and their errors;
* :mod:`.series`: one seed-named metric (history, kind, tag keys, Prometheus child);
* :mod:`.binding`: seed names bound to Prometheus families on one registry;
* :mod:`.catalog`: one monitor's series by name (one kind and tag-key set per name);
* :mod:`.stats`: ``get_metric_stats``' statistics and ``get_all_metrics``' dicts;
* :mod:`.monitor`: :class:`PerformanceMonitor`, the seed's API over those;
* :mod:`.calls`: a decorated function's last calls, read as its three seed names;
* :mod:`.recorder`: the recorder protocol and :class:`~.recorder.Timing`, the primitive the
  decorator uses; :mod:`.collector` (one process, one lock a call, families at scrape) and
  :mod:`.mmap_recorder` (multiprocess mode, prometheus_client primitives) implement it;
* :mod:`.functions`: one recorder per decorated name per monitor;
* :mod:`.decorator`: :func:`monitor_performance` and its one hot-path trick;
* :mod:`.shared`: how the process-wide :data:`performance_monitor` is built (it lives here,
  in the package, built on first use: see :mod:`vigil._lazy`).
"""

from typing import TYPE_CHECKING

from vigil._lazy import shared_objects
from vigil.monitoring.metrics.decorator import monitor_performance
from vigil.monitoring.metrics.monitor import PerformanceMonitor
from vigil.monitoring.metrics.naming import MetricKind, prometheus_name
from vigil.monitoring.metrics.shared import build_shared_monitor

__all__ = [
    "MetricKind",
    "PerformanceMonitor",
    "monitor_performance",
    "performance_monitor",
    "prometheus_name",
]

performance_monitor: PerformanceMonitor
"""The seed's process-wide monitor; built on first use (see :mod:`vigil._lazy`)."""

if not TYPE_CHECKING:
    __getattr__ = shared_objects(__name__, {"performance_monitor": build_shared_monitor})
