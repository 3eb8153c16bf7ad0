"""vigil.error_handling.breaker.protection: ``cb.protect()`` blocks and ``@cb`` generators."""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator

import pytest
from prometheus_client import CollectorRegistry
from tests.unit.error_handling.breaker_rig import Rig, fail, rigs, trip

from vigil.error_handling.breaker import CircuitBreaker
from vigil.error_handling.errors import CircuitOpenError
from vigil.testing import FakeClock


@pytest.fixture
def make() -> Iterator[Callable[..., Rig]]:
    """Builds rigs (named ``svc`` unless told otherwise) and closes their alert managers."""
    with rigs() as build:
        yield build


# --- blocks -----------------------------------------------------------------------------------


def test_a_block_that_finishes_is_a_success(make: Callable[..., Rig]) -> None:
    """A block ending normally counts one success; one slower than slow_call_duration, slow."""
    rig = make(slow_call_duration=1.0)
    with rig.breaker.protect():
        pass
    with rig.breaker.protect():
        rig.clock.advance(2.0)
    assert (rig.calls("success"), rig.calls("slow")) == (1, 1)


def test_an_exception_in_a_block_counts_per_expected_exception(
        make: Callable[..., Rig]) -> None:
    """An expected exception is a failure and propagates as the same object; another is
    ignored; two failures in a row open the breaker."""
    rig = make(failure_threshold=2, expected_exception=ValueError)
    error = ValueError("down")
    with pytest.raises(ValueError, match="down") as info, rig.breaker.protect():
        raise error
    assert info.value is error
    with pytest.raises(KeyError), rig.breaker.protect():
        raise KeyError("not the service")
    assert (rig.calls("failure"), rig.calls("ignored")) == (1, 1)
    with pytest.raises(ValueError, match="again"), rig.breaker.protect():
        raise ValueError("down again")
    assert rig.breaker.state == "OPEN"


def test_a_rejected_block_raises_on_entry_without_running(make: Callable[..., Rig]) -> None:
    """An OPEN breaker raises CircuitOpenError when the block is entered, even with a
    fallback set (fallbacks are for calls); the body never runs."""
    rig = make(failure_threshold=1, fallback=lambda: "cached")
    trip(rig)
    ran: list[str] = []
    with pytest.raises(CircuitOpenError) as info, rig.breaker.protect():
        ran.append("body")
    assert ran == []
    assert (info.value.breaker, info.value.state) == ("svc", "OPEN")
    assert rig.calls("rejected") == 1


def test_a_block_is_a_probe_like_any_call(make: Callable[..., Rig]) -> None:
    """In HALF_OPEN a block takes the probe slot (a second one is rejected) and its success
    closes the breaker."""
    rig = make(failure_threshold=1, recovery_timeout=5.0)
    trip(rig)
    rig.clock.advance(5.0)
    with rig.breaker.protect():
        with pytest.raises(CircuitOpenError) as inner, rig.breaker.protect():
            pass
        assert inner.value.state == "HALF_OPEN"
    assert rig.breaker.state == "CLOSED"


def test_one_protection_runs_one_block_at_a_time(make: Callable[..., Rig]) -> None:
    """Entering a Protection that is running raises RuntimeError (make one per block); once
    it has exited it may be entered again."""
    rig = make()
    protection = rig.breaker.protect()
    with protection, pytest.raises(RuntimeError, match="already running"), protection:
        pass
    with protection:
        pass
    assert rig.calls("success") == 2


def test_async_blocks_count_and_cancellation_is_ignored(make: Callable[..., Rig]) -> None:
    """``async with``: a success, a failure, and a cancelled probe that is ignored and frees
    its slot for the next probe."""
    rig = make(failure_threshold=1, recovery_timeout=5.0)
    cb = rig.breaker

    async def main() -> None:
        async with cb.protect():
            await asyncio.sleep(0)
        with pytest.raises(OSError, match="down"):
            async with cb.protect():
                raise OSError("down")
        rig.clock.advance(5.0)
        task = asyncio.create_task(probe())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cb.state == "HALF_OPEN"
        async with cb.protect():
            pass

    async def probe() -> None:
        async with cb.protect():
            await asyncio.sleep(3600)  # never finishes: it is cancelled

    asyncio.run(main())
    assert rig.all_calls() == {"success": 2, "slow": 0, "failure": 1, "ignored": 1,
                               "rejected": 0}
    assert cb.state == "CLOSED"


def test_an_async_block_is_rejected_on_entry(make: Callable[..., Rig]) -> None:
    """``async with cb.protect()`` on an OPEN breaker raises before the body."""
    rig = make(failure_threshold=1)
    trip(rig)
    ran: list[str] = []

    async def main() -> None:
        async with rig.breaker.protect():
            ran.append("body")

    with pytest.raises(CircuitOpenError):
        asyncio.run(main())
    assert ran == []


# --- generators -------------------------------------------------------------------------------


def test_a_generator_takes_its_permit_on_the_first_next(make: Callable[..., Rig]) -> None:
    """Creating the generator counts nothing; the first next() of a generator made while the
    breaker was CLOSED raises CircuitOpenError once it has opened."""
    rig = make(failure_threshold=1)

    @rig.breaker
    def rows() -> Iterator[int]:
        yield 1

    made = rows()
    assert rig.all_calls() == dict.fromkeys(("success", "slow", "failure", "ignored",
                                             "rejected"), 0.0)
    trip(rig)
    with pytest.raises(CircuitOpenError):
        next(made)
    assert rig.calls("rejected") == 1


def test_a_generator_that_finishes_is_one_success(make: Callable[..., Rig]) -> None:
    """Iterated to the end: one success, its items and its return value pass through, and
    send() reaches the inner generator."""
    rig = make()
    received: list[object] = []

    @rig.breaker
    def echo() -> Generator[int, str, str]:
        received.append((yield 1))
        received.append((yield 2))
        return "done"

    gen = echo()
    assert next(gen) == 1
    assert gen.send("a") == 2
    with pytest.raises(StopIteration) as stop:
        gen.send("b")
    assert stop.value.value == "done"
    assert received == ["a", "b"]
    assert rig.calls("success") == 1
    assert inspect.isgeneratorfunction(echo)
    assert echo.circuit_breaker is rig.breaker  # type: ignore[attr-defined]


def test_a_generator_that_raises_is_a_failure(make: Callable[..., Rig]) -> None:
    """An expected exception from inside the iteration is a failure and propagates; two in a
    row open the breaker; an unexpected one is ignored."""
    rig = make(failure_threshold=2, expected_exception=OSError)

    @rig.breaker
    def broken(exc: Exception) -> Iterator[int]:
        yield 1
        raise exc

    for exc in (OSError("read"), KeyError("x"), OSError("read")):
        with pytest.raises(type(exc)):
            list(broken(exc))
    assert (rig.calls("failure"), rig.calls("ignored")) == (2, 1)
    assert rig.breaker.state == "OPEN"


def test_a_generator_closed_early_is_a_success(make: Callable[..., Rig]) -> None:
    """close() after the first item, and a generator dropped half-way (garbage collected),
    each count one success; the inner generator's finally runs."""
    rig = make()
    cleaned: list[str] = []

    @rig.breaker
    def rows() -> Generator[int, None, None]:
        try:
            yield from range(100)
        finally:
            cleaned.append("closed")

    gen = rows()
    next(gen)
    gen.close()
    dropped = rows()
    next(dropped)
    del dropped
    gc.collect()
    assert cleaned == ["closed", "closed"]
    assert rig.all_calls()["success"] == 2
    assert rig.calls("ignored") == 0


def test_an_early_close_lets_a_half_open_breaker_close(make: Callable[..., Rig]) -> None:
    """A probe that is a generator closed after one item closes a HALF_OPEN breaker (were it
    ignored, the breaker would keep probing forever)."""
    rig = make(failure_threshold=1, recovery_timeout=5.0)

    @rig.breaker
    def stream() -> Generator[int, None, None]:
        yield from range(10)

    trip(rig)
    rig.clock.advance(5.0)
    first = stream()
    next(first)
    with pytest.raises(CircuitOpenError):  # the only probe slot is held by `first`
        next(stream())
    first.close()
    assert rig.breaker.state == "CLOSED"


def test_throw_is_forwarded_to_the_inner_generator(make: Callable[..., Rig]) -> None:
    """throw() reaches the inner generator: one that handles it goes on and finishes as a
    success; one that does not raises it out as a failure."""
    rig = make(failure_threshold=5)

    @rig.breaker
    def tolerant() -> Generator[str, None, None]:
        try:
            yield "first"
        except ValueError:
            yield "recovered"

    gen = tolerant()
    next(gen)
    assert gen.throw(ValueError("retry")) == "recovered"
    assert list(gen) == []
    strict = tolerant()
    next(strict)
    with pytest.raises(KeyError, match="unhandled"):
        strict.throw(KeyError("unhandled"))
    assert (rig.calls("success"), rig.calls("failure")) == (1, 1)


def test_a_generators_duration_runs_from_first_next_to_the_end(
        make: Callable[..., Rig]) -> None:
    """The slow rule measures first next() to the end (the consumer's time included)."""
    rig = make(slow_call_duration=1.0)

    @rig.breaker
    def rows() -> Iterator[int]:
        yield 1
        yield 2

    for row in rows():
        if row == 1:
            rig.clock.advance(2.0)  # the consumer is slow between items
    assert rig.calls("slow") == 1


def test_an_unnamed_breaker_takes_the_generators_name() -> None:
    """@CircuitBreaker() on a generator function names the breaker after it."""
    @CircuitBreaker(registry=CollectorRegistry(), clock=FakeClock())
    def numbers() -> Iterator[int]:
        yield 1

    assert numbers.circuit_breaker.name.endswith("numbers")  # type: ignore[attr-defined]
    assert list(numbers()) == [1]


# --- async generators -------------------------------------------------------------------------


def test_an_async_generator_is_one_protected_run(make: Callable[..., Rig]) -> None:
    """An async generator: items and asend() values pass through, the end is a success,
    athrow() is forwarded, and an exception from inside is a failure."""
    rig = make(failure_threshold=5, expected_exception=OSError)
    received: list[object] = []

    @rig.breaker
    async def echo() -> AsyncGenerator[int, object]:
        try:
            received.append((yield 1))
        except KeyError:
            received.append("caught")
        received.append((yield 2))

    @rig.breaker
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise OSError("read")

    async def main() -> None:
        gen = echo()
        assert await gen.asend(None) == 1
        assert await gen.athrow(KeyError("k")) == 2
        with pytest.raises(StopAsyncIteration):
            await gen.asend("b")
        assert [item async for item in echo()] == [1, 2]
        with pytest.raises(OSError, match="read"):
            async for _ in broken():
                pass

    asyncio.run(main())
    assert received == ["caught", "b", None, None]
    assert (rig.calls("success"), rig.calls("failure")) == (2, 1)
    assert inspect.isasyncgenfunction(echo)


def test_an_async_generator_closed_early_is_a_success(make: Callable[..., Rig]) -> None:
    """aclose() after the first item, one dropped half-way while the loop runs (asyncio's
    finalizer closes it) and one still open when asyncio.run ends (closed by the loop's
    shutdown_asyncgens) each count one success; the inner generators are closed too."""
    rig = make()
    cleaned: list[str] = []

    @rig.breaker
    async def rows() -> AsyncGenerator[int, None]:
        try:
            for i in range(100):
                yield i
        finally:
            cleaned.append("closed")

    left_open: list[AsyncGenerator[int, None]] = []

    async def main() -> None:
        gen = rows()
        await gen.__anext__()
        await gen.aclose()
        dropped = rows()
        await dropped.__anext__()
        del dropped
        for _ in range(3):  # the finalizer's aclose() task runs
            await asyncio.sleep(0)
        assert cleaned == ["closed", "closed"]
        left_open.append(rows())
        await left_open[0].__anext__()

    asyncio.run(main())
    assert cleaned == ["closed", "closed", "closed"]
    assert (rig.calls("success"), rig.calls("ignored")) == (3, 0)


def test_an_async_generator_is_rejected_on_its_first_step(make: Callable[..., Rig]) -> None:
    """An OPEN breaker raises CircuitOpenError from the first __anext__; a cancellation
    while the generator awaits is ignored."""
    rig = make(failure_threshold=1, recovery_timeout=5.0)

    @rig.breaker
    async def slow() -> AsyncIterator[int]:
        await asyncio.sleep(3600)
        yield 1

    async def first_item() -> int:
        return await slow().__anext__()

    async def cancelled() -> None:
        task = asyncio.create_task(first_item())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert rig.calls("ignored") == 1
    fail(rig.breaker)

    async def rejected() -> None:
        with pytest.raises(CircuitOpenError):
            await slow().__anext__()

    asyncio.run(rejected())
    assert rig.calls("rejected") == 1
