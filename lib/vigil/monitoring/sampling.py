"""Which traces are sampled: OpenTelemetry's samplers, read from ``OTEL_TRACES_SAMPLER``.

A sampled span is exported (see :mod:`vigil.monitoring.otlp`) and sends ``01`` in its
``traceparent``; an unsampled one sends ``00`` and is not exported, but it is still a span:
log lines carry its ids, and vigil's own ring buffer and duration histogram keep it (they are
this process's view, not a trace backend's sample).

The names and their meaning are OpenTelemetry's (the SDK's ``OTEL_TRACES_SAMPLER`` values, with
``OTEL_TRACES_SAMPLER_ARG`` as the ratio), so one variable samples vigil's spans and the SDK's
alike: ``parentbased_always_on`` (the default), ``parentbased_always_off``,
``parentbased_traceidratio``, ``always_on``, ``always_off``, ``traceidratio``. A ``parentbased_``
sampler follows the parent's sampled flag and decides only for roots; the ratio decision reads
the low 64 bits of the trace id, as the SDK's ``TraceIdRatioBased`` does, so vigil and an
OpenTelemetry SDK in another process make the same decision for the same trace.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vigil.monitoring.context import SpanContext

__all__ = ["SAMPLERS", "Sampler", "sampler_from_env"]

SAMPLERS = ("always_off", "always_on", "parentbased_always_off", "parentbased_always_on",
            "parentbased_traceidratio", "traceidratio")
_RATIO_SAMPLERS = ("parentbased_traceidratio", "traceidratio")
_DEFAULT = "parentbased_always_on"
_LOW_64 = (1 << 64) - 1


@dataclass(frozen=True)
class Sampler:
    """One of OpenTelemetry's samplers; :meth:`sample` is the whole decision, without I/O."""

    name: str = _DEFAULT
    ratio: float = 1.0
    _bound: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.name not in SAMPLERS:
            raise ValueError(f"sampler: got {self.name!r}; expected one of {', '.join(SAMPLERS)}")
        ratio = self.ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0:
            raise ValueError(f"sampler ratio: got {ratio!r}; expected a number from 0 to 1")
        object.__setattr__(self, "_bound", round(float(ratio) * (_LOW_64 + 1)))

    @property
    def is_default(self) -> bool:
        """Whether this is ``parentbased_always_on`` (a child takes its parent's flag, roots
        are sampled), which the tracer decides inline without calling :meth:`sample`."""
        return self.name == _DEFAULT

    def sample(self, parent: SpanContext | None, trace_id: str) -> bool:
        """Whether a span with ``parent`` (``None`` for a root) in trace ``trace_id`` is sampled."""
        name = self.name
        if parent is not None and name.startswith("parentbased_"):
            return parent.sampled
        if name.endswith("always_on"):
            return True
        if name.endswith("always_off"):
            return False
        return int(trace_id, 16) & _LOW_64 < self._bound


def sampler_from_env(environ: Mapping[str, str] | None = None,
                     warn: Callable[[str], None] | None = None) -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` name.

    As the OpenTelemetry SDK does, an unknown name falls back to ``parentbased_always_on`` and a
    ratio that is not a number from 0 to 1 to 1.0; ``warn`` is told which variable, the value and
    what is allowed (these are OpenTelemetry's variables, shared with the SDK, so a typo in
    them must not stop the application).
    """
    env = os.environ if environ is None else environ
    raw = env.get("OTEL_TRACES_SAMPLER", "").strip()
    name = raw.lower() or _DEFAULT
    if name not in SAMPLERS:
        if warn is not None:
            warn(f"OTEL_TRACES_SAMPLER: got {raw!r}; expected one of {', '.join(SAMPLERS)}; "
                 f"using {_DEFAULT}")
        name = _DEFAULT
    if name not in _RATIO_SAMPLERS:
        return Sampler(name)
    arg = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    try:
        ratio = float(arg)
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(arg)
    except ValueError:
        if warn is not None:
            warn(f"OTEL_TRACES_SAMPLER_ARG: got {arg!r}; expected a number from 0 to 1 for "
                 f"{name}; using 1.0")
        ratio = 1.0
    return Sampler(name, ratio)
