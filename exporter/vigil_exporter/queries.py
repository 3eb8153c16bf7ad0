"""The JSON API's data: vigil's in-memory buffers read into answers, apart from the routes.

Each function reads one buffer (breakers, tracer, performance monitor) and returns plain dicts
that :mod:`vigil_exporter.routes.api` encodes; none of them knows about HTTP but
:func:`process_headers`, which names the answering process in headers as :func:`process_info`
names it in bodies. Metadata is redacted here (:func:`redacted`), as in the log lines: the API
is no backdoor around ``monitoring.logging.redact_keys``. A trace tree is cut below
:data:`MAX_TREE_DEPTH` levels (the cut node has ``truncated: true``); a whole W3C trace keeps
within its byte budget by leaving out whole trees (:func:`trace_by_trace_id`).
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from vigil.config import get_config
from vigil.error_handling.breaker import CircuitBreaker
from vigil.monitoring import logs as vigil_logs
from vigil.monitoring import multiprocess as vigil_multiprocess
from vigil.monitoring.metrics import PerformanceMonitor
from vigil.monitoring.tracing import ExecutionTracer
from vigil.text import safe_text
from vigil_exporter.responses import SafeJSONResponse, encode_within

__all__ = [
    "MAX_TREE_DEPTH",
    "breaker_list",
    "label",
    "metric_stats",
    "process_headers",
    "process_info",
    "redacted",
    "trace_by_trace_id",
    "trace_tree",
]

MAX_TREE_DEPTH = 100  # trace tree levels returned by /api/traces/{id}
_ROOTS_KEY = b',"roots":'  # spliced after the head of a trace_by_trace_id answer


def breaker_list(breakers: Iterable[CircuitBreaker]) -> list[dict[str, Any]]:
    """The ``/api/breakers`` entries for ``breakers``.

    Under multiprocess mode each entry also has ``workers``: the breaker's state in every live
    worker, by pid, read from the state gauge's files (so one answer shows them all).
    """
    workers = _states_by_worker() if vigil_multiprocess.MULTIPROCESS else None
    entries = []
    for breaker in breakers:
        snap = breaker.snapshot()
        entries.append({
            "name": snap["name"], "state": snap["state"],
            "failure_count": snap["failure_count"], "counts": snap["calls"],
            "seconds_until_probe": snap["seconds_until_probe"],
            "recovery_timeout": snap["recovery_timeout"], "failure_rate": snap["failure_rate"],
            **({} if workers is None else {"workers": workers.get(snap["name"], {})}),
        })
    return entries


def _states_by_worker() -> dict[str, dict[str, str]]:
    """breaker -> pid -> state, from every live worker's ``vigil_circuit_breaker_state``."""
    states: dict[str, dict[str, str]] = {}
    for labels, value in vigil_multiprocess.per_worker("vigil_circuit_breaker_state"):
        if value == 1 and "pid" in labels:
            states.setdefault(labels.get("breaker", ""), {})[labels["pid"]] = \
                labels.get("state", "")
    return {name: dict(sorted(by_pid.items())) for name, by_pid in states.items()}


def redacted(metadata: Any) -> Any:
    """Metadata with secret-looking keys redacted, as in the log lines (the API is no backdoor)."""
    return vigil_logs.redact(metadata, get_config().monitoring.logging.redact_keys) \
        if metadata else metadata


def trace_tree(tracer: ExecutionTracer, trace_id: str,
               process: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The tree under ``trace_id``, cut below :data:`MAX_TREE_DEPTH` levels; None if unknown.

    With ``process`` (:func:`process_info`) every node gets its ``pid`` and ``host`` (unless
    it has its own) and the root ``process``.
    """
    tree = tracer.get_trace_tree(trace_id)
    if tree is None:
        return None
    _prepare_tree(tree, process)
    if process is not None:
        tree["process"] = dict(process)
    return tree


def trace_by_trace_id(tracer: ExecutionTracer, trace_id: str, process: Mapping[str, Any],
                      max_bytes: int) -> tuple[bytes, bool] | None:
    """The ``/api/traces/{trace_id}`` answer for a W3C trace id (32 hex, lower case), encoded
    within ``max_bytes``, and whether roots were left out; None when no entry is retained.

    The answer is ``{"trace_id", "span_count", "truncated", "process", "roots"}``: the
    tracer's :meth:`~ExecutionTracer.get_trace_by_trace_id` trees, each prepared as
    :func:`trace_tree` prepares its one. As many whole roots as fit, in start order (so the
    latest-starting are left out, possibly all of them), with ``truncated: true`` when any
    were. A root is prepared and encoded only when its turn comes: past the first root that
    does not fit none is, and the answer is built within the budget plus that one root (the
    trees themselves are copies of what the tracer retains, bounded by its retention).
    """
    roots = tracer.get_trace_by_trace_id(trace_id)
    if not roots:
        return None
    counts: list[int] = []

    def prepared() -> Iterator[dict[str, Any]]:
        for root in roots:
            counts.append(_prepare_tree(root, process))
            yield root

    def head(span_count: int, truncated: bool) -> bytes:
        return bytes(SafeJSONResponse({"trace_id": trace_id, "span_count": span_count,
                                       "truncated": truncated, "process": dict(process)}).body)

    # Every node kept takes more than one byte of the roots, so span_count <= max_bytes: the
    # head at its largest leaves the roots what the whole answer may still take.
    budget = max_bytes - len(head(max_bytes, False)) - len(_ROOTS_KEY)
    encoded, kept, truncated = encode_within(prepared(), budget)
    return head(sum(counts[:kept]), truncated)[:-1] + _ROOTS_KEY + encoded + b"}", truncated


def _prepare_tree(tree: dict[str, Any], process: Mapping[str, Any] | None) -> int:
    """Make a :meth:`~ExecutionTracer.get_trace_tree` dict an API answer's tree, in place, and
    return its node count: metadata redacted, ``pid`` and ``host`` on every node (with
    ``process``), and ``truncated`` on each (true where it was cut: below
    :data:`MAX_TREE_DEPTH` levels)."""
    count = 0
    # Iterative: a tree deep enough to need cutting would overflow a recursive walk.
    stack: list[tuple[dict[str, Any], int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        node["metadata"] = redacted(node.get("metadata"))
        if process is not None:
            label(node, process)
        node["truncated"] = False
        if depth >= MAX_TREE_DEPTH and node["children"]:
            node["children"] = []
            node["truncated"] = True
        else:
            stack.extend((child, depth + 1) for child in node["children"])
    return count


def process_info() -> dict[str, Any]:
    """The answering process, as the JSON API names it: ``{"pid", "host", "multiprocess"}``
    (the current pid: right in a forked worker)."""
    return {"pid": os.getpid(), "host": safe_text(socket.gethostname()),
            "multiprocess": vigil_multiprocess.MULTIPROCESS}


def process_headers(process: Mapping[str, Any]) -> dict[str, str]:
    """``Vigil-Pid``, ``Vigil-Host`` (percent-encoded if not printable ASCII) and
    ``Vigil-Multiprocess`` for an answer of ``process``."""
    host = str(process["host"])
    if not (host.isascii() and host.isprintable()):
        host = urllib.parse.quote(host, safe="", errors="replace")
    return {"Vigil-Pid": str(process["pid"]), "Vigil-Host": host,
            "Vigil-Multiprocess": "true" if process["multiprocess"] else "false"}


def label(entry: dict[str, Any], process: Mapping[str, Any]) -> dict[str, Any]:
    """``entry`` with ``pid`` and ``host``: its own when it has them (a log line's fields),
    else the answering process's, whose buffer holds it."""
    entry.setdefault("pid", process["pid"])
    entry.setdefault("host", process["host"])
    return entry


def metric_stats(monitor: PerformanceMonitor, name: str) -> dict[str, Any] | None:
    """``get_metric_stats(name)`` with its name, or None for a name never recorded."""
    if name not in monitor.metric_names():
        return None
    return {"name": name, **monitor.get_metric_stats(name)}
