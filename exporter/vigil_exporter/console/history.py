"""Recent calls, failures and rejections per circuit breaker, in fixed buckets: the console's
sparklines.

A breaker only keeps counts since it was made (``snapshot()["calls"]``); the console wants
"how many in each of the last minutes". :class:`BreakerHistory` turns successive readings of
those running totals into per-bucket deltas:

- **Bounded**: ``buckets`` buckets of ``bucket_seconds`` each per breaker name (default 30 x
  10 s: five minutes), at most ``max_breakers`` names (default 200; more are left untracked and
  counted in :attr:`BreakerHistory.untracked`). A name not seen for a whole window is dropped.
- **Sampled when asked** (no thread): the console's history route samples the live breakers
  on every request, so the history starts when a console first looks and is as fine as its
  polling (every few seconds, finer than a bucket). A bucket no sample reached is ``None``
  ("not observed"), never a made-up 0; after a gap longer than one bucket the counts that
  accumulated in it are not attributed to any bucket (they could belong to any of them).
- **Sans-I/O**: :meth:`BreakerHistory.record` takes the time and the readings and decides;
  :meth:`BreakerHistory.sample` is the thin driver that reads the clock and the breakers.
- **Totals that go down**: ``CircuitBreaker.snapshot()``'s counts only grow today (even
  ``cb.reset()`` keeps them); should one shrink (counts cleared), the new value is the delta
  since, never a negative one.
- **Same name twice**: two live breakers with one name add up into one history (as they do
  in the metrics); each one's previous totals are kept apart (weakly: a breaker nobody
  references still drops out of ``all_breakers()``).

Buckets are aligned on the clock's monotonic seconds (``floor(t / bucket_seconds)``), so every
request that falls in one bucket adds to the same one. Thread-safe: routes run in a pool.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from vigil.clock import SYSTEM_CLOCK, Clock
from vigil.config import ConfigError

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_BUCKET_SECONDS",
    "DEFAULT_MAX_BREAKERS",
    "BreakerHistory",
    "Reading",
]

DEFAULT_BUCKET_SECONDS = 10.0
DEFAULT_BUCKETS = 30  # five minutes of 10 s buckets
DEFAULT_MAX_BREAKERS = 200
_MAX_BUCKETS = 1000
_MAX_TRACKED = 10_000

# The breaker's outcomes (snapshot()["calls"] keys) that count as a call that ran.
_RAN = ("success", "slow", "failure", "ignored")


class _Breaker(Protocol):
    def snapshot(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Reading:
    """One breaker's running totals at one moment: calls that ran, failures, rejections."""

    calls: int
    failures: int
    rejected: int

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> Reading:
        """The totals in a ``CircuitBreaker.snapshot()`` (missing outcomes count 0)."""
        counts = snapshot.get("calls") or {}
        return cls(calls=sum(_count(counts, key) for key in _RAN),
                   failures=_count(counts, "failure"), rejected=_count(counts, "rejected"))

    def since(self, earlier: Reading) -> Reading:
        """What happened between ``earlier`` and this reading; a total that went down was
        reset, and counts from zero."""
        return Reading(*(now - then if now >= then else now for now, then in
                         ((self.calls, earlier.calls), (self.failures, earlier.failures),
                          (self.rejected, earlier.rejected))))


def _count(counts: Mapping[str, Any], key: str) -> int:
    value = counts.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


class _Ring:
    """One name's buckets, oldest first; the last one is bucket ``newest``."""

    __slots__ = ("calls", "failures", "newest", "rejected", "seen")

    def __init__(self, size: int, bucket: int) -> None:
        self.calls: deque[int | None] = deque([None] * size, maxlen=size)
        self.failures: deque[int | None] = deque([None] * size, maxlen=size)
        self.rejected: deque[int | None] = deque([None] * size, maxlen=size)
        self.newest = bucket
        self.seen = bucket

    def advance(self, bucket: int) -> None:
        """Make ``bucket`` the newest one; the buckets skipped were not observed."""
        size = self.calls.maxlen or 0
        for _ in range(min(bucket - self.newest, size)):
            for series in (self.calls, self.failures, self.rejected):
                series.append(None)
        self.newest = max(self.newest, bucket)

    def add(self, delta: Reading) -> None:
        for series, value in ((self.calls, delta.calls), (self.failures, delta.failures),
                              (self.rejected, delta.rejected)):
            series[-1] = (series[-1] or 0) + value


class BreakerHistory:
    """Per-bucket calls, failures and rejections of the live breakers (module docs)."""

    def __init__(self, *, bucket_seconds: float = DEFAULT_BUCKET_SECONDS,
                 buckets: int = DEFAULT_BUCKETS, max_breakers: int = DEFAULT_MAX_BREAKERS,
                 clock: Clock | None = None) -> None:
        if isinstance(bucket_seconds, bool) or not isinstance(bucket_seconds, int | float) \
                or not math.isfinite(bucket_seconds) or bucket_seconds <= 0:
            raise ConfigError("bucket_seconds", bucket_seconds,
                              "must be a finite number of seconds > 0")
        for key, value, top in (("buckets", buckets, _MAX_BUCKETS),
                                ("max_breakers", max_breakers, _MAX_TRACKED)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise ConfigError(key, value, f"must be an integer from 1 to {top}")
        self.bucket_seconds = float(bucket_seconds)
        self.buckets = buckets
        self.max_breakers = max_breakers
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._rings: dict[str, _Ring] = {}
        # Each breaker's totals at its last reading, and that reading's bucket.
        self._previous: weakref.WeakKeyDictionary[Any, tuple[Reading, int]] = \
            weakref.WeakKeyDictionary()
        self._last_bucket: int | None = None
        self._untracked: set[str] = set()
        # Reentrant: sample() holds it from the reading to the recording, so two concurrent
        # samples cannot record their readings in the other order (an older total recorded
        # after a newer one would look like a reset and count twice).
        self._lock = threading.RLock()

    @property
    def untracked(self) -> int:
        """Names seen at the last sample that got no history (``max_breakers`` reached)."""
        with self._lock:
            return len(self._untracked)

    def bucket_of(self, monotonic: float) -> int:
        """The bucket a monotonic time falls in."""
        return math.floor(monotonic / self.bucket_seconds)

    # --- the core: readings in, buckets updated --------------------------------------------

    def record(self, now: float, readings: Iterable[tuple[Any, str, Reading]]) -> None:
        """Take ``(breaker, name, totals)`` readings made at monotonic time ``now``.

        ``breaker`` identifies the breaker across readings (held weakly: it must support
        weak references, as ``CircuitBreaker`` does). Every live breaker should be in every
        call: one missing from a sample and back in the next counts from its new totals on.
        """
        bucket = self.bucket_of(now)
        with self._lock:
            # A breaker first seen now, with the last sample at most one bucket ago, was made
            # since then: all its counts are new. After a longer gap they are unattributable.
            continuous = self._last_bucket is not None and bucket - self._last_bucket <= 1
            if self._last_bucket is not None and bucket < self._last_bucket:
                bucket = self._last_bucket  # a clock that went back: stay in the newest bucket
            self._untracked = set()
            for breaker, name, totals in readings:
                previous = self._previous.get(breaker)
                if previous is None:
                    base: Reading | None = Reading(0, 0, 0) if continuous else None
                else:
                    base = previous[0] if bucket - previous[1] <= 1 else None
                self._previous[breaker] = (totals, bucket)
                ring = self._ring_locked(name, bucket)
                if ring is None:
                    self._untracked.add(name)
                    continue
                ring.advance(bucket)
                ring.seen = bucket
                if base is not None:
                    ring.add(totals.since(base))
            self._last_bucket = bucket

    def _ring_locked(self, name: str, bucket: int) -> _Ring | None:
        ring = self._rings.get(name)
        if ring is not None:
            return ring
        if len(self._rings) >= self.max_breakers:
            self._forget_locked(bucket)
            if len(self._rings) >= self.max_breakers:
                return None
        ring = self._rings[name] = _Ring(self.buckets, bucket)
        return ring

    def _forget_locked(self, bucket: int) -> None:
        """Drop the names not seen for a whole window: their buckets are all out of it."""
        for name in [n for n, r in self._rings.items() if bucket - r.seen >= self.buckets]:
            del self._rings[name]

    def series(self, now: float) -> list[dict[str, Any]]:
        """Every tracked name's buckets up to ``now``'s, oldest first, by name:
        ``{"name", "bucket_seconds", "calls", "failures", "rejected"}`` (``None``: a bucket
        no sample reached)."""
        bucket = self.bucket_of(now)
        with self._lock:
            if self._last_bucket is not None:
                bucket = max(bucket, self._last_bucket)
            self._forget_locked(bucket)
            out = []
            for name in sorted(self._rings):
                ring = self._rings[name]
                ring.advance(bucket)
                out.append({"name": name, "bucket_seconds": self.bucket_seconds,
                            "calls": list(ring.calls), "failures": list(ring.failures),
                            "rejected": list(ring.rejected)})
            return out

    # --- the driver ------------------------------------------------------------------------

    def sample(self, breakers: Iterable[_Breaker]) -> list[dict[str, Any]]:
        """Read every breaker's totals now, record them, and return :meth:`series`."""
        with self._lock:
            now = self._clock.monotonic()
            readings = []
            for breaker in breakers:
                snapshot = breaker.snapshot()
                readings.append((breaker, str(snapshot.get("name")),
                                 Reading.from_snapshot(snapshot)))
            self.record(now, readings)
            return self.series(now)
