"""Retry with backoff and jitter: the seed's ``@with_retry``, and ``retrying()``, sync and async.

::

    @with_retry(max_attempts=3, retry_on=(IOError, ConnectionError))
    async def process_file(file_path: str): ...

    @with_retry                      # every setting from error_handling.retry
    def fetch(url: str): ...

    for attempt in retrying(max_attempts=5, retry_on=OSError, operation="upload"):
        with attempt:                # async for ... works the same way
            upload(blob)

**Shape** (tenacity's, not backoff's twin sync/async modules), one module per job:

* :mod:`.policy`: :class:`RetryPolicy` is the whole decision, without I/O: given the attempt
  that just ended (its number, exception or result, elapsed time) it answers
  :class:`RetryDecision` (retry after a delay, or give up and why).
* :mod:`.wait`: the wait strategies (``wait_fixed``, ``wait_random``, ``wait_incrementing``,
  ``wait_exponential``, ``wait_chain``, ``with_jitter``, ``+``); the default one is built from
  them.
* :mod:`.attempts`: one call's state and attempts (tenacity's ``RetryCallState`` and
  ``AttemptManager``) and the one retry loop per protocol; :func:`current_attempt`.
* :mod:`.events`: the events, the announcement (:class:`NamedRetry`), the give-up annotation;
  the metrics and log subscribers are :mod:`vigil.reporting.retries`, attached through
  ``Retrier.named``.
* :mod:`.retrier`: :class:`Retrier` (a policy bound to an operation, a clock and its events)
  and :func:`retrying`.
* :mod:`.fast_path`: the first-try fast path (the one place this trick lives);
  :mod:`.decorator`: :func:`with_retry` on top of it.

**What is retried.** An exception that is an instance of ``retry_on`` (a class or a tuple of
classes) and, when ``retry_if`` is given, for which ``retry_if(exc)`` is true; with
``retry_if_result``, a result for which ``retry_if_result(result)`` is true. Never retried,
whatever ``retry_on`` says: :class:`~vigil.error_handling.errors.CircuitOpenError` (the breaker
decides when to try again) and anything that is not an ``Exception`` (``KeyboardInterrupt``,
``SystemExit``, ``asyncio.CancelledError``), which propagates at once, untouched and uncounted.
``retry_if`` is asked only when a retry is otherwise possible (type matches, attempts left);
``retry_if_result`` after every attempt that returned. A callback that raises (``retry_if``,
``retry_if_result``, a ``wait`` strategy) lets its exception propagate, with the judged
exception as ``__context__``; the call is not counted as an outcome.

**Giving up.** The exception of the last attempt propagates itself (no wrapper type to unwrap),
carrying ``exc.vigil_attempts`` (the attempts made) and a note shown in its traceback, e.g.
``vigil: gave up after 3 attempts (operation 'fetch')``, followed by the reason when it is not
that attempts ran out (``: OSError is not in retry_on``, ``: the next attempt would start after
max_time (5s)``). Exception classes that refuse new attributes or notes are left as they are.
Giving up on a result (``retry_if_result`` still true after the last attempt, or ``max_time``)
returns that last result, as backoff's ``on_predicate`` does; the give-up is the
:class:`RetryGaveUp` event (``exception=None``, ``result=`` the value).

**max_time** (seconds, the injected clock): no attempt starts more than ``max_time`` after the
first one began; a wait that would end past it is not slept, the call gives up at once.

**Backoff** (the default ``wait``). Let ``b = initial_delay * multiplier ** (n - 1)`` for retry
*n* (1-based).

* ``jitter=False``: the wait is ``min(b, max_delay)``.
* ``jitter=True`` (default, ``error_handling.retry.default_jitter``): let ``hi = min(2 * b,
  max_delay)``; the wait is uniform in ``[max(hi / 2, initial_delay), hi]``.

While ``2 * b <= max_delay`` that is ``[b, 2b]``: "equal jitter" (half the window is guaranteed
backoff, half spreads clients that failed together), placed above the base rather than below
it, so ``initial_delay`` is a floor jitter never undercuts: ``initial_delay=1`` waits at least a
second, as the config key says ("before jitter"). With the default multiplier 2 the windows of
consecutive retries touch (``[1, 2]``, ``[2, 4]``, ...), so below the cap waits never shrink.
Once ``2 * b`` passes ``max_delay`` the window is ``[max(max_delay / 2, initial_delay),
max_delay]``, **which can be less than b**: near and at the cap the wait is not bounded below
by ``b`` but by half the cap, so jitter is not lost during a long outage, when synchronised
clients matter most (waits there vary rather than grow). Every wait lies in ``[initial_delay,
max_delay]``; ``initial_delay=0`` retries at once. In strategy terms this is
``with_jitter(wait_exponential(2 * initial_delay, multiplier, max_delay=max_delay),
floor=initial_delay, rng=rng)`` (``wait_exponential(initial_delay, multiplier,
max_delay=max_delay)`` without jitter); :func:`~.wait.default_wait` builds it. Randomness comes
from ``rng`` (a ``random.Random``; inject a seeded one in tests).

**wait=** replaces those five arguments with any ``fn(n) -> seconds`` (giving both is a
ConfigError). What it returns is checked: NaN, a negative number, infinity or a non-number
raise :class:`~vigil.config.ConfigError` (key ``wait``), never a sleep.

**Defaults** (``None``) are read when the decorator is applied (or the policy built):
``error_handling.retry.default_*`` from :func:`vigil.configure`, :data:`vigil.clock.SYSTEM_CLOCK`,
prometheus_client's default registry, and a shared ``StructuredLogger("vigil.retry")``.

**Metrics** (labels bound when the decorator is applied, or ``retrying()`` called):

* ``vigil_retry_calls_total{operation,outcome}``: calls, by how they ended: ``success_first_try``,
  ``success_after_retry``, ``failure_after_retry`` (failed after at least one retry: attempts
  or ``max_time`` exhausted, a later error not retryable, or the last result still rejected),
  ``failure_without_retry`` (the first attempt failed and was not retried: not retryable,
  ``max_attempts=1``, or its wait would pass ``max_time``). Calls ended by a non-``Exception``
  (cancellation, interrupt) are not an outcome of the operation and are not counted.
* ``vigil_retry_attempts_total{operation,exception}``: retries performed, i.e. failed attempts
  that were followed by a retry, by the failed attempt's exception class name, or ``result``
  for an attempt retried for its result. The final failed attempt of a call is not counted.

**Events.** Each decorated function (each :class:`Retrier`, each ``retrying()`` object) has an
:class:`~vigil.error_handling.events.EventPublisher` named ``retry:<operation>`` (its label in
``vigil_event_subscriber_failures_total``) at ``fn.events`` (also
:func:`retry_events(fn) <retry_events>`, which finds it through other decorators):
:class:`RetryScheduled` before each wait, :class:`RetrySucceeded` when a call succeeds after
retrying, :class:`RetryGaveUp` when a call ends failed. vigil's subscribers count
``vigil_retry_attempts_total`` and write one WARNING line per retry (``operation``, ``attempt``,
``max_attempts``, ``delay``, ``exception``, ``error``; a result-retry has ``exception:
"result"`` and no ``error``, results are never logged) plus one when giving up after retries.
A subscriber that raises is logged and counted by the publisher, never breaks the call.

**The attempt inside.** ``retrying()`` hands out :class:`Attempt` objects: ``attempt.number``
(1-based), ``attempt.elapsed`` (seconds since the first attempt began, the injected clock);
with ``retry_if_result`` the block reports its value with ``attempt.set_result(value)`` (a block
that reports nothing returned ``None``, as in tenacity).
With ``expose_attempt=True`` (with_retry or retrying) :func:`current_attempt` returns the
running attempt from anywhere inside it (a ``ContextVar``); otherwise it is not set, because
setting it costs about a quarter of a first-try success.

**Cost.** A call that succeeds first time does one ``try`` and one bound counter increment
(plus the ``retry_if_result`` predicate, and one clock read with ``max_time``): no call state,
no policy call, no event object (:mod:`.fast_path`, the one place this trick lives).
``expose_attempt``, ``Retrier.call`` and ``retrying()`` go through the driver from the first
attempt (about 1.3 µs more per call; ``bench/retry_options.py``).
"""

from vigil.error_handling.retry.attempts import Attempt, current_attempt
from vigil.error_handling.retry.decorator import retry_events, with_retry
from vigil.error_handling.retry.events import (
    RetryEvent,
    RetryGaveUp,
    RetryScheduled,
    RetrySucceeded,
)
from vigil.error_handling.retry.policy import (
    GiveUpReason,
    RetryDecision,
    RetryOutcome,
    RetryPolicy,
)
from vigil.error_handling.retry.retrier import Retrier, Retrying, retrying
from vigil.error_handling.retry.wait import (
    Wait,
    WaitFn,
    default_wait,
    wait_chain,
    wait_exponential,
    wait_fixed,
    wait_incrementing,
    wait_random,
    with_jitter,
)

__all__ = [
    "Attempt",
    "GiveUpReason",
    "Retrier",
    "RetryDecision",
    "RetryEvent",
    "RetryGaveUp",
    "RetryOutcome",
    "RetryPolicy",
    "RetryScheduled",
    "RetrySucceeded",
    "Retrying",
    "Wait",
    "WaitFn",
    "current_attempt",
    "default_wait",
    "retry_events",
    "retrying",
    "wait_chain",
    "wait_exponential",
    "wait_fixed",
    "wait_incrementing",
    "wait_random",
    "with_jitter",
    "with_retry",
]
