"""A simulated local AI agent studio instrumented with vigil: the application of ``vigil demo``.

It is also the worked example of using vigil, so it uses only the public API (``import vigil``,
``vigil.error_handling``, ``vigil.monitoring``). Four parts, each showing a piece of vigil:

* **File ingestion** (:class:`FileIngestor`): unsupported formats, corrupted files and failed OCR
  go through ``FileProcessingErrorHandler``; the steps are ``@monitor_performance`` and
  ``@trace_execution`` functions; each file ends with one JSON log line.
* **Agent runs** (:class:`AgentRunner`): tools fail and ``AgentExecutionErrorHandler`` decides
  whether to call them again, long tasks hit the step limit, and now and then an agent loops (a
  critical alert). Each run is one trace: run -> steps -> tool calls.
* **Vector database** (:class:`MemoryStore`): goes down for a while in every cycle. Its circuit
  breaker (``error_recovery_manager.get_circuit_breaker("vector_db", ...)``) opens, searches fall
  back to an in-memory keyword index, then it probes (HALF_OPEN) and closes once the database is
  back.
* **Embedding API** (:class:`EmbeddingClient`): flaky, retried by ``@with_retry``; when the retries
  run out, ``MemoryStorageErrorHandler.handle_embedding_api_failure`` decides whether the document
  is queued for another try later.

The story repeats every 60 s; every time below (and every simulated latency) is multiplied by
``scale``, so tests play a whole cycle in a few seconds:

=======  ======================================================================================
0 s      steady traffic; file, tool and embedding errors trickle in
8 s      the vector database goes down; after 3 failed searches the breaker opens (high alert)
15 s     an agent loops on the same tool call: aborted (critical alert)
~18.5 s  the breaker lets one probe through (HALF_OPEN); the database is still down: OPEN again
25 s     the database is back
~28.5 s  the next probe succeeds: CLOSED
30-40 s  the embedding API browns out: retries pile up, half the documents are requeued
40 s     a second runaway agent
=======  ======================================================================================

Business metrics it records through ``performance_monitor`` (Prometheus names):

* ``agent_studio_files_ingested_total{kind,outcome}``,
  ``agent_studio_agent_runs_total{agent,outcome}``, ``agent_studio_tool_calls_total{tool,outcome}``;
* ``agent_studio_searches_total{backend}`` (``vector_db`` or ``keyword_fallback``) and
  ``agent_studio_embeddings_total{outcome}`` (``ok``, ``requeued``, ``dropped``);
* the histograms ``agent_studio_agent_run_duration_seconds{agent}`` and
  ``agent_studio_agent_steps{agent}`` (completed runs);
* the gauge ``agent_studio_embedding_backlog``.

Driving it::

    with AgentStudioDemo(seed=7) as demo:
        demo.run(60, on_progress=print)
        print(demo.final_report())
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import IO

import vigil
from vigil.error_handling import (
    AgentExecutionErrorHandler,
    CircuitBreaker,
    CircuitState,
    ErrorCategory,
    ErrorRecoveryManager,
    FileProcessingErrorHandler,
    MemoryStorageErrorHandler,
    RetryScheduled,
    StateTransition,
    error_recovery_manager,
    retry_events,
    with_retry,
)
from vigil.monitoring import (
    Alert,
    StructuredLogger,
    execution_tracer,
    monitor_performance,
    performance_monitor,
    trace_context,
    trace_execution,
)

__all__ = [
    "AgentRunner",
    "AgentStudioDemo",
    "DemoSummary",
    "Document",
    "EmbeddingClient",
    "FileIngestor",
    "KeywordIndex",
    "MemoryStore",
    "SearchResult",
    "SimulatedVectorDB",
    "StoryClock",
]

# --- the story (seconds of a 60 s cycle, before scaling) -----------------------------------

CYCLE = 60.0
DB_OUTAGE = (8.0, 25.0)
EMBEDDING_BROWNOUT = (30.0, 40.0)
RUNAWAYS_AT = (15.0, 40.0)

# The breaker opens after 3 failed searches in a row and waits 10 s before probing: long enough
# for Prometheus (5 s scrapes) to see it OPEN, short enough to recover within the minute.
BREAKER_FAILURE_THRESHOLD = 3
BREAKER_RECOVERY_TIMEOUT = 10.0

MAX_STEPS = 8  # an agent run stops here (AgentExecutionErrorHandler.handle_resource_limit_exceeded)
LOOP_REPEATS = 4  # the same tool call this many times in a row is a runaway loop

AGENTS = ("research-agent", "coding-agent", "planning-agent")
TOOL_FAILURE_RATES = {"web_search": 0.2, "code_runner": 0.12, "calculator": 0.03,
                      "memory_search": 0.0}  # memory_search fails only when the vector DB does
FILE_KINDS = {"pdf": 30, "md": 22, "csv": 10, "png": 15, "docx": 13, "xyz": 10}  # weights
TOPICS = ("invoice", "contract", "agent", "embedding", "retrieval", "latency", "budget",
          "roadmap", "incident", "vector", "customer", "release")


# --- what goes wrong -----------------------------------------------------------------------


class UnsupportedFormatError(Exception):
    """No reader for this kind of file."""


class CorruptedFileError(Exception):
    """The file cannot be parsed."""


class OcrError(Exception):
    """OCR found no usable text in a scan."""


class ToolError(Exception):
    """A tool call failed."""


class StepLimitExceeded(Exception):
    """An agent run needed more than MAX_STEPS steps."""


class AgentLoopDetected(Exception):
    """An agent repeats the same tool call without making progress."""


# --- time ----------------------------------------------------------------------------------


class StoryClock:
    """Story time (seconds since the demo started, divided by ``scale``) and scaled pauses.

    Reads time through a ``vigil.Clock``, the same one the breaker and the retries use, so a
    test can drive the whole story with ``vigil.testing.FakeClock``.
    """

    def __init__(self, clock: vigil.Clock, scale: float) -> None:
        self.clock = clock
        self.scale = scale
        self._origin: float | None = None

    def start(self) -> None:
        if self._origin is None:
            self._origin = self.clock.monotonic()

    def now(self) -> float:
        """Story seconds since the start (0 before it)."""
        if self._origin is None:
            return 0.0
        return (self.clock.monotonic() - self._origin) / self.scale

    def cycle_and_phase(self) -> tuple[int, float]:
        cycle, phase = divmod(self.now(), CYCLE)
        return int(cycle), phase

    def within(self, window: tuple[float, float]) -> bool:
        """Whether the current cycle is between ``window``'s two story times."""
        return self._origin is not None and window[0] <= self.cycle_and_phase()[1] < window[1]

    def seconds(self, story_seconds: float) -> float:
        """Real (clock) seconds for a story duration."""
        return story_seconds * self.scale

    async def pause(self, story_seconds: float) -> None:
        await self.clock.sleep_async(self.seconds(story_seconds))


# --- counting what happened (read by another thread: the CLI's progress line) ---------------


class _Tally:
    """Thread-safe counters keyed ``group:name``; alert handlers count from their own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[key] += amount

    def group(self, prefix: str) -> dict[str, int]:
        with self._lock:
            return {key[len(prefix) + 1:]: count for key, count in sorted(self._counts.items())
                    if key.startswith(prefix + ":")}

    def get(self, key: str) -> int:
        with self._lock:
            return self._counts[key]


@dataclass
class _Studio:
    """What every part of the application shares."""

    story: StoryClock
    rng: random.Random
    manager: ErrorRecoveryManager
    tally: _Tally
    log_stream: IO[str] | None

    def logger(self, component: str) -> StructuredLogger:
        return StructuredLogger(component, stream=self.log_stream)

    def error(self, category: ErrorCategory) -> None:
        """Count an error handed to vigil's handlers, for the summary."""
        self.tally.add(f"errors:{category.value}")


# --- the vector database, its breaker and its fallback --------------------------------------


@dataclass(frozen=True)
class SearchResult:
    """Document ids found for a query, and which backend found them."""

    backend: str  # "vector_db" or "keyword_fallback": a small, fixed set (a metric label)
    hits: list[str]


class KeywordIndex:
    """A plain in-memory keyword search over the ingested documents: the fallback."""

    def __init__(self, capacity: int = 500) -> None:
        self._docs: deque[tuple[str, frozenset[str]]] = deque(maxlen=capacity)

    def add(self, doc_id: str, text: str) -> None:
        self._docs.append((doc_id, frozenset(text.lower().split())))

    def search(self, query: str, k: int = 3) -> SearchResult:
        words = set(query.lower().split())
        scored = sorted(((len(words & terms), doc_id) for doc_id, terms in list(self._docs)),
                        reverse=True)
        return SearchResult("keyword_fallback", [doc_id for score, doc_id in scored[:k] if score])


class SimulatedVectorDB:
    """A vector database that is unreachable during ``DB_OUTAGE`` of every cycle."""

    def __init__(self, studio: _Studio, index: KeywordIndex) -> None:
        self._studio = studio
        self._index = index  # the "embeddings" it searches are the same documents

    async def search(self, query: str, k: int = 3) -> SearchResult:
        await self._studio.story.pause(self._studio.rng.uniform(0.02, 0.06))
        if self._studio.story.within(DB_OUTAGE):
            # A fixed message: the handler's repeated alerts fold into one (de-duplication).
            raise ConnectionError("vector db unreachable")
        return SearchResult("vector_db", self._index.search(query, k).hits)


class MemoryStore:
    """The studio's memory: documents, and their search through the vector DB's breaker."""

    def __init__(self, studio: _Studio) -> None:
        self._studio = studio
        self._logger = studio.logger("MemoryStore")
        self.index = KeywordIndex()
        self.db = SimulatedVectorDB(studio, self.index)
        # One breaker per name, kept by the recovery manager; the settings apply on creation.
        # While it is OPEN the breaker does not call the database: it returns
        # keyword_search(query, k) instead (same arguments as the protected call).
        self.breaker: CircuitBreaker = studio.manager.get_circuit_breaker(
            "vector_db",
            failure_threshold=BREAKER_FAILURE_THRESHOLD,
            recovery_timeout=studio.story.seconds(BREAKER_RECOVERY_TIMEOUT),
            expected_exception=(ConnectionError, TimeoutError),
            fallback=self.keyword_search,
            clock=studio.story.clock,
            logger=studio.logger("vigil.circuit_breaker"))

    def add(self, doc_id: str, text: str) -> None:
        self.index.add(doc_id, text)

    def keyword_search(self, query: str, k: int = 3) -> SearchResult:
        self._studio.tally.add("fallback:calls")
        return self.index.search(query, k)

    async def search(self, query: str, k: int = 3) -> SearchResult:
        self._studio.tally.add("calls:searches")
        with trace_context("MemoryStore", "search", {"k": k}):
            try:
                result = await self.breaker.call_async(self.db.search, query, k)
            except (ConnectionError, TimeoutError) as exc:
                # This call did reach the database and failed (the breaker counted it). The
                # handler reports it and says whether a fallback is registered for VECTOR_DB.
                self._studio.error(ErrorCategory.VECTOR_DB)
                if not MemoryStorageErrorHandler.handle_vector_db_connection_error(
                        exc, manager=self._studio.manager):
                    raise
                result = self.keyword_search(query, k)
            if result.backend != "vector_db":
                self._logger.info("answered from the keyword index",
                                  metadata={"breaker_state": self.breaker.state.value,
                                            "hits": len(result.hits)})
        performance_monitor.increment_counter("agent_studio.searches",
                                              tags={"backend": result.backend})
        return result


# --- the embedding API ----------------------------------------------------------------------


class EmbeddingClient:
    """A flaky embedding API: ConnectionError/TimeoutError now and then, often in a brownout."""

    def __init__(self, studio: _Studio) -> None:
        self._studio = studio
        # Decorated here rather than on the method because the clock (for the backoff sleeps)
        # and the seeded random source (for the jitter) belong to this studio.
        self.embed = with_retry(
            max_attempts=3, retry_on=(ConnectionError, TimeoutError),
            initial_delay=studio.story.seconds(0.2), max_delay=studio.story.seconds(1.0),
            operation="embedding_api", clock=studio.story.clock, rng=studio.rng,
            logger=studio.logger("vigil.retry"))(self.request)

    @trace_execution("EmbeddingClient", "embed")  # one span per attempt: retries show as siblings
    async def request(self, text: str) -> list[float]:
        rng = self._studio.rng
        await self._studio.story.pause(rng.uniform(0.03, 0.1))
        # Mostly down in the brownout: half the calls use up their 3 attempts there.
        failure_rate = 0.8 if self._studio.story.within(EMBEDDING_BROWNOUT) else 0.1
        if rng.random() < failure_rate:
            if rng.random() < 0.5:
                raise ConnectionError("embedding API connection reset")
            raise TimeoutError("embedding API timed out")
        return [rng.random() for _ in range(8)]


# --- file ingestion -------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    path: str
    text: str
    requeues: int = 0  # times the embedding was given up and queued for later


class FileIngestor:
    """Reads the files dropped into the studio, extracts their text and indexes it."""

    def __init__(self, studio: _Studio, memory: MemoryStore, embeddings: EmbeddingClient) -> None:
        self._studio = studio
        self._memory = memory
        self._embeddings = embeddings
        self._logger = studio.logger("FileProcessor")
        self._serial = 0
        # Documents whose embedding failed, waiting for another try (bounded: oldest go first).
        self.backlog: deque[Document] = deque(maxlen=100)

    def next_file(self) -> str:
        kind = self._studio.rng.choices(list(FILE_KINDS), weights=list(FILE_KINDS.values()))[0]
        self._serial += 1
        stem = {"png": "scan", "xyz": "export", "csv": "table"}.get(kind, "document")
        return f"inbox/{stem}-{self._serial:04d}.{kind}"

    async def work(self) -> None:
        """One unit of work: a document from the backlog if any, else the next file."""
        if self.backlog:
            with trace_context("FileProcessor", "reindex"):
                self._studio.tally.add("traces:root")
                await self.index(self.backlog.popleft())
        else:
            await self.ingest(self.next_file())

    @monitor_performance("ingest_file")
    async def ingest(self, path: str) -> str:
        """Read, extract and index one file; answers its outcome: ok, skipped or fallback."""
        kind = path.rsplit(".", 1)[-1]
        self._studio.tally.add("calls:files")
        self._studio.tally.add("traces:root")
        with trace_context("FileProcessor", "ingest_file", {"file_path": path, "kind": kind}):
            outcome, text = await self._read(path)
            if text is not None:
                await self.index(Document(path, text))
            self._logger.info(f"file {outcome}",
                              metadata={"file_path": path, "kind": kind, "outcome": outcome})
        self._studio.tally.add(f"files:{outcome}")
        performance_monitor.increment_counter("agent_studio.files_ingested",
                                              tags={"kind": kind, "outcome": outcome})
        return outcome

    async def _read(self, path: str) -> tuple[str, str | None]:
        manager = self._studio.manager
        try:
            return "ok", await self.extract_text(path)
        except UnsupportedFormatError as exc:
            result = FileProcessingErrorHandler.handle_unsupported_format(path, exc,
                                                                          manager=manager)
        except CorruptedFileError as exc:
            result = FileProcessingErrorHandler.handle_corrupted_file(path, exc, manager=manager)
        except OcrError as exc:
            result = FileProcessingErrorHandler.handle_ocr_failure(path, exc, manager=manager)
        self._studio.error(ErrorCategory.FILE_PROCESSING)
        # The handler's status says what became of the file: "skipped", or "fallback" for a
        # scan whose OCR failed: its text is lost, but its name still says something.
        status = str(result["status"])
        if status == "fallback":
            return status, path.rsplit("/", 1)[-1].replace("-", " ")
        return status, None

    @monitor_performance("extract_text")
    @trace_execution("FileProcessor", "extract_text")
    async def extract_text(self, path: str) -> str:
        kind = path.rsplit(".", 1)[-1]
        rng = self._studio.rng
        if kind == "xyz":
            raise UnsupportedFormatError(f"no reader for .{kind} files")
        await self._studio.story.pause(rng.uniform(0.05, 0.2))
        if kind == "png":
            return await self.run_ocr(path)
        if kind in ("pdf", "docx") and rng.random() < 0.1:
            raise CorruptedFileError(f"{kind} structure is damaged")
        return " ".join(rng.sample(TOPICS, 4))

    @monitor_performance("run_ocr")
    @trace_execution("FileProcessor", "ocr")
    async def run_ocr(self, path: str) -> str:
        rng = self._studio.rng
        await self._studio.story.pause(rng.uniform(0.1, 0.3))
        if rng.random() < 0.3:
            raise OcrError("OCR confidence below threshold")
        return " ".join(rng.sample(TOPICS, 3))

    async def index(self, doc: Document) -> str:
        """Embed and store a document; answers ok, requeued or dropped."""
        self._studio.tally.add("calls:embeddings")
        try:
            await self._embeddings.embed(doc.text)
        except (ConnectionError, TimeoutError) as exc:
            # with_retry gave up. The handler says whether the document deserves another go
            # later (it stops saying yes after max_embedding_retries requeues).
            self._studio.error(ErrorCategory.API_CALL)
            if MemoryStorageErrorHandler.handle_embedding_api_failure(
                    exc, retry_count=doc.requeues, manager=self._studio.manager):
                self.backlog.append(replace(doc, requeues=doc.requeues + 1))
                outcome = "requeued"
            else:
                outcome = "dropped"
            self._logger.warning(f"embedding {outcome}",
                                 metadata={"file_path": doc.path, "requeues": doc.requeues})
        else:
            self._memory.add(doc.path, doc.text)
            outcome = "ok"
        performance_monitor.increment_counter("agent_studio.embeddings",
                                              tags={"outcome": outcome})
        performance_monitor.record_gauge("agent_studio.embedding_backlog", len(self.backlog))
        return outcome


# --- agents ---------------------------------------------------------------------------------


class AgentRunner:
    """Runs agents: each step calls a tool; tools fail, tasks run long, agents loop."""

    def __init__(self, studio: _Studio, memory: MemoryStore) -> None:
        self._studio = studio
        self._memory = memory
        self._logger = studio.logger("AgentExecutor")
        self._runaways_done: set[tuple[int, float]] = set()
        self.last_trace_id: str | None = None

    def _runaway_due(self) -> bool:
        """True once for each RUNAWAYS_AT mark: the first run starting after it loops."""
        cycle, phase = self._studio.story.cycle_and_phase()
        for mark in RUNAWAYS_AT:
            if phase >= mark and (cycle, mark) not in self._runaways_done:
                self._runaways_done.add((cycle, mark))
                return True
        return False

    async def run(self, agent_id: str) -> str:
        """One agent run; answers its outcome: completed, step_limit, runaway_loop, tool_failed."""
        rng = self._studio.rng
        runaway = self._runaway_due()
        task_steps = rng.randint(2, MAX_STEPS + 1)  # one task in eight needs too many steps
        clock = self._studio.story.clock
        started = clock.monotonic()
        self._studio.tally.add("calls:agent_runs")
        self._studio.tally.add("traces:root")
        outcome = "completed"
        try:
            steps = await self._run_traced(agent_id, task_steps, runaway)
        except StepLimitExceeded:
            outcome = "step_limit"
        except AgentLoopDetected:
            outcome = "runaway_loop"
        except ToolError:
            outcome = "tool_failed"
        else:
            performance_monitor.record_histogram("agent_studio.agent_steps", steps,
                                                 tags={"agent": agent_id})
        performance_monitor.record_histogram("agent_studio.agent_run_duration_seconds",
                                             clock.monotonic() - started,
                                             tags={"agent": agent_id})
        performance_monitor.increment_counter("agent_studio.agent_runs",
                                              tags={"agent": agent_id, "outcome": outcome})
        self._studio.tally.add(f"agent_runs:{outcome}")
        return outcome

    @monitor_performance("agent_run")  # vigil_function_errors_total counts the aborted runs
    async def _run_traced(self, agent_id: str, task_steps: int, runaway: bool) -> int:
        trace_id: str | None = None
        try:
            with trace_context("AgentExecutor", "agent_run", {"agent_id": agent_id}) as trace_id:
                self._logger.info("agent run started",
                                  metadata={"agent_id": agent_id, "task_steps": task_steps})
                steps = await self._steps(agent_id, task_steps, runaway)
                self._logger.info("agent run completed",
                                  metadata={"agent_id": agent_id, "steps": steps})
                return steps
        finally:
            self.last_trace_id = trace_id  # set once the trace has ended, whatever the outcome

    async def _steps(self, agent_id: str, task_steps: int, runaway: bool) -> int:
        rng = self._studio.rng
        manager = self._studio.manager
        recent: deque[tuple[str, str]] = deque(maxlen=LOOP_REPEATS)
        for step in range(1, MAX_STEPS + 1):
            if runaway:  # the agent keeps asking its memory the same thing
                tool, argument = "memory_search", "what did I just look up"
            else:
                tool = rng.choice(list(TOOL_FAILURE_RATES))
                argument = " ".join(rng.sample(TOPICS, 2))
            with trace_context("AgentExecutor", "step", {"step": step, "tool": tool}):
                await self.call_tool(agent_id, tool, argument)
            recent.append((tool, argument))
            if len(recent) == LOOP_REPEATS and len(set(recent)) == 1:
                # Handled inside the run's trace so the error record and log carry its trace id;
                # re-raised so the trace ends with status "error".
                loop = AgentLoopDetected(f"same tool call {LOOP_REPEATS} times in a row")
                self._studio.error(ErrorCategory.AGENT_EXECUTION)
                AgentExecutionErrorHandler.handle_infinite_loop(agent_id, step, loop,
                                                                manager=manager)
                raise loop
            if step >= task_steps and not runaway:  # a runaway agent never thinks it is done
                return step
        limit = StepLimitExceeded(f"task needs more than max_steps={MAX_STEPS}")
        self._studio.error(ErrorCategory.AGENT_EXECUTION)
        AgentExecutionErrorHandler.handle_resource_limit_exceeded(agent_id, "max_steps", limit,
                                                                  manager=manager)
        raise limit

    async def call_tool(self, agent_id: str, tool: str, argument: str) -> str:
        """Call ``tool``, again after a failure while the handler says retrying is worth it."""
        manager = self._studio.manager
        attempt = 0
        while True:
            attempt += 1
            self._studio.tally.add("calls:tool_calls")
            try:
                # The operation is the tool's name: a small fixed set, fine as a metric label.
                with trace_context("ToolRunner", tool, {"attempt": attempt}):
                    result = await self._invoke(tool, argument)
            except ToolError as exc:
                performance_monitor.increment_counter(
                    "agent_studio.tool_calls", tags={"tool": tool, "outcome": "failed"})
                self._studio.error(ErrorCategory.AGENT_EXECUTION)
                if AgentExecutionErrorHandler.handle_tool_failure(agent_id, tool, exc,
                                                                  manager=manager):
                    continue  # allowed up to max_tool_retries failures in a row
                raise
            performance_monitor.increment_counter("agent_studio.tool_calls",
                                                  tags={"tool": tool, "outcome": "ok"})
            AgentExecutionErrorHandler.reset_tool_failures(agent_id, tool, manager=manager)
            return result

    async def _invoke(self, tool: str, argument: str) -> str:
        if tool == "memory_search":
            return " ".join((await self._memory.search(argument)).hits)
        rng = self._studio.rng
        await self._studio.story.pause(rng.uniform(0.05, 0.25))
        if rng.random() < TOOL_FAILURE_RATES[tool]:
            raise ToolError({"web_search": "upstream answered 503",
                             "code_runner": "sandbox crashed"}.get(tool, "bad input"))
        return f"{tool}: done"


# --- the summary ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    """What the demo has done so far (:meth:`AgentStudioDemo.summary`)."""

    elapsed: float  # clock seconds the demo has run
    calls: Mapping[str, int]  # files, agent_runs, tool_calls, searches, embeddings
    errors: Mapping[str, int]  # errors handed to vigil's handlers, by ErrorCategory value
    breaker_states: Mapping[str, str]  # breaker name -> CLOSED, OPEN or HALF_OPEN
    breaker_trips: int  # transitions to OPEN (a failed probe re-opening counts again)
    breaker_recoveries: int  # transitions to CLOSED
    fallback_calls: int  # searches answered by the keyword index instead of the vector DB
    retries: int  # embedding API retries (with_retry's RetryScheduled events)
    alerts_fired: Mapping[str, int]  # firing alerts dispatched to handlers, by source
    alerts_resolved: Mapping[str, int]  # resolved alerts (from Alertmanager), by source
    traces_recorded: int  # root traces: one per file, agent run, chat answer, reindex
    agent_runs: Mapping[str, int] = field(default_factory=dict)  # by outcome
    files: Mapping[str, int] = field(default_factory=dict)  # by outcome
    example_trace_id: str | None = None  # the latest agent run (for /api/traces/{id})

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def total_errors(self) -> int:
        return sum(self.errors.values())


def _pairs(counts: Mapping[str, int], sep: str = "=", join: str = " ") -> str:
    return join.join(f"{key}{sep}{value}" for key, value in sorted(counts.items()))


# --- the application ------------------------------------------------------------------------


class AgentStudioDemo:
    """The simulated agent studio: ingestion, agents, chat searches, all instrumented.

    ``scale`` multiplies every simulated duration, outage window and breaker/retry timing
    (0.05 plays a 60 s cycle in 3 s). ``seed`` makes the random choices repeatable. ``clock``
    (default ``vigil.SYSTEM_CLOCK``) is what the story, the breaker and the retries read.
    ``manager`` (default: the process-wide ``error_recovery_manager``) handles every error;
    its ``alert_manager`` is where the summary counts alerts. A manager keeps one
    ``"vector_db"`` breaker for good: when the process-wide one already has it (an earlier demo
    in this process), this demo takes a manager of its own; an explicit ``manager`` that already
    has one is refused. ``log_stream`` (default stdout) receives the demo's JSON log lines.

    Call :meth:`close` (or use ``with``) to unsubscribe from the breaker and alert manager.
    """

    def __init__(self, *, scale: float = 1.0, seed: int | None = None,
                 clock: vigil.Clock | None = None, manager: ErrorRecoveryManager | None = None,
                 log_stream: IO[str] | None = None) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int | float) \
                or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        manager = self._choose_manager(manager, log_stream)
        self._studio = _Studio(story=StoryClock(clock or vigil.SYSTEM_CLOCK, float(scale)),
                               rng=random.Random(seed), manager=manager, tally=_Tally(),
                               log_stream=log_stream)
        self.memory = MemoryStore(self._studio)
        self.embeddings = EmbeddingClient(self._studio)
        self.ingestor = FileIngestor(self._studio, self.memory, self.embeddings)
        self.agents = AgentRunner(self._studio, self.memory)
        self._chat_logger = self._studio.logger("ChatService")
        # With a fallback registered for VECTOR_DB, the manager answers "fallback" to vector DB
        # errors and handle_vector_db_connection_error says a fallback exists.
        manager.register_fallback(ErrorCategory.VECTOR_DB, self.memory.keyword_search)
        # The public way to watch a breaker and a retried function: their event publishers.
        self._unsubscribe = [
            self.memory.breaker.events.subscribe(self._on_breaker_event),
            retry_events(self.embeddings.embed).subscribe(self._on_retry_event),
        ]
        manager.alert_manager.register_handler(self._count_alert)
        self._closed = False
        self._running = False
        self._elapsed = 0.0
        self._run_started: float | None = None

    @staticmethod
    def _choose_manager(manager: ErrorRecoveryManager | None,
                        log_stream: IO[str] | None) -> ErrorRecoveryManager:
        if manager is not None:
            if "vector_db" in manager.circuit_breakers():
                raise ValueError("this ErrorRecoveryManager already has a 'vector_db' breaker "
                                 "(its settings and fallback are fixed); give the demo a new "
                                 "ErrorRecoveryManager()")
            return manager
        if "vector_db" not in error_recovery_manager.circuit_breakers():
            return error_recovery_manager
        return ErrorRecoveryManager(logger=StructuredLogger("vigil.recovery", stream=log_stream))

    # --- properties -----------------------------------------------------------------------

    @property
    def manager(self) -> ErrorRecoveryManager:
        """The recovery manager handling the demo's errors."""
        return self._studio.manager

    @property
    def breaker(self) -> CircuitBreaker:
        """The vector database's circuit breaker."""
        return self.memory.breaker

    @property
    def story(self) -> StoryClock:
        """Where the demo is in its 60 s cycle (started by the first run)."""
        return self._studio.story

    # --- subscribers ----------------------------------------------------------------------

    def _on_breaker_event(self, event: object) -> None:
        if isinstance(event, StateTransition):
            if event.to_state is CircuitState.OPEN:
                self._studio.tally.add("breaker:trips")
            elif event.to_state is CircuitState.CLOSED:
                self._studio.tally.add("breaker:recoveries")

    def _on_retry_event(self, event: object) -> None:
        if isinstance(event, RetryScheduled):
            self._studio.tally.add("retry:scheduled")

    def _count_alert(self, alert: Alert) -> None:
        # Runs on the alert manager's worker thread; sees vigil's own alerts and, through the
        # exporter's webhook, Prometheus alerts coming back from Alertmanager.
        self._studio.tally.add(f"alerts_{alert.status}:{alert.source}")

    # --- running --------------------------------------------------------------------------

    def run(self, duration: float | None = None, stop: threading.Event | None = None, *,
            on_progress: Callable[[str], object] | None = None,
            progress_interval: float = 5.0) -> DemoSummary:
        """Run the workload until ``duration`` clock seconds pass or ``stop`` is set.

        ``duration=None`` runs until ``stop`` is set (or Ctrl-C). ``on_progress``, if given, is
        called with :meth:`progress_line` every ``progress_interval`` seconds. Blocks the
        calling thread (its own event loop); from async code use :meth:`run_async`.
        """
        return asyncio.run(self.run_async(duration, stop, on_progress=on_progress,
                                          progress_interval=progress_interval))

    async def run_async(self, duration: float | None = None,
                        stop: threading.Event | None = None, *,
                        on_progress: Callable[[str], object] | None = None,
                        progress_interval: float = 5.0) -> DemoSummary:
        """:meth:`run` as a coroutine, on the running event loop."""
        if duration is not None and not duration >= 0:
            raise ValueError(f"duration must be >= 0 seconds or None, got {duration!r}")
        if progress_interval <= 0:
            raise ValueError(f"progress_interval must be > 0, got {progress_interval!r}")
        if self._closed:
            raise RuntimeError("this demo is closed")
        if self._running:
            raise RuntimeError("this demo is already running")
        clock = self._studio.story.clock
        self._running = True
        self._studio.story.start()
        self._run_started = start = clock.monotonic()
        deadline = math.inf if duration is None else start + duration
        next_progress = start + progress_interval
        workers = [asyncio.create_task(self._forever(self._ingest_once), name="ingestion"),
                   asyncio.create_task(self._forever(self._agent_once), name="agent-1"),
                   asyncio.create_task(self._forever(self._agent_once), name="agent-2"),
                   asyncio.create_task(self._forever(self._chat_once), name="chat")]
        try:
            while not (stop is not None and stop.is_set()) and not any(w.done() for w in workers):
                now = clock.monotonic()
                if now >= deadline:
                    break
                if on_progress is not None and now >= next_progress:
                    next_progress = now + progress_interval
                    on_progress(self.progress_line())
                # Short naps so a stop request is noticed within 50 ms.
                await clock.sleep_async(min(0.05, deadline - now))
        finally:
            for worker in workers:
                worker.cancel()
            outcomes = await asyncio.gather(*workers, return_exceptions=True)
            self._elapsed += clock.monotonic() - start
            self._run_started = None
            self._running = False
        for outcome in outcomes:  # a worker that crashed is a bug: let it show
            if isinstance(outcome, Exception):
                raise outcome
        return self.summary()

    async def _forever(self, work: Callable[[], Awaitable[float]]) -> None:
        """Do ``work`` again and again, pausing for the story seconds it answers."""
        while True:
            await self._studio.story.pause(await work())

    async def _ingest_once(self) -> float:
        await self.ingestor.work()
        return self._studio.rng.uniform(0.4, 1.0)

    async def _agent_once(self) -> float:
        await self.agents.run(self._studio.rng.choice(AGENTS))
        return self._studio.rng.uniform(0.5, 1.5)

    async def _chat_once(self) -> float:
        """A user question answered from memory (the traffic that trips the breaker)."""
        query = " ".join(self._studio.rng.sample(TOPICS, 2))
        self._studio.tally.add("traces:root")
        with trace_context("ChatService", "answer"):
            result = await self.memory.search(query)
            self._chat_logger.debug("answered", metadata={"backend": result.backend,
                                                          "hits": len(result.hits)})
        return self._studio.rng.uniform(0.2, 0.5)

    # --- reporting ------------------------------------------------------------------------

    def summary(self) -> DemoSummary:
        """The counts so far; safe to call from any thread while the demo runs."""
        tally = self._studio.tally
        elapsed = self._elapsed
        started = self._run_started
        if started is not None:
            elapsed += self._studio.story.clock.monotonic() - started
        return DemoSummary(
            elapsed=elapsed,
            calls=tally.group("calls"),
            errors=tally.group("errors"),
            breaker_states={self.breaker.name: self.breaker.state.value},
            breaker_trips=tally.get("breaker:trips"),
            breaker_recoveries=tally.get("breaker:recoveries"),
            fallback_calls=tally.get("fallback:calls"),
            retries=tally.get("retry:scheduled"),
            alerts_fired=tally.group("alerts_firing"),
            alerts_resolved=tally.group("alerts_resolved"),
            traces_recorded=tally.get("traces:root"),
            agent_runs=tally.group("agent_runs"),
            files=tally.group("files"),
            example_trace_id=self.agents.last_trace_id)

    def progress_line(self) -> str:
        """One line: calls, errors by category, breaker states, fallbacks, retries, alerts."""
        s = self.summary()
        breakers = " ".join(f"{name}={state}" for name, state in sorted(s.breaker_states.items()))
        line = (f"[{s.elapsed:6.1f}s] calls={s.total_calls} errors={s.total_errors}"
                f" ({_pairs(s.errors) or 'none'}) | breakers {breakers}"
                f" trips={s.breaker_trips} recoveries={s.breaker_recoveries}"
                f" fallbacks={s.fallback_calls} | retries={s.retries}"
                f" | alerts fired={sum(s.alerts_fired.values())}")
        if s.alerts_fired:
            line += f" ({_pairs(s.alerts_fired)})"
        line += f" resolved={sum(s.alerts_resolved.values())}"
        if s.alerts_resolved:
            line += f" ({_pairs(s.alerts_resolved)})"
        return line

    def final_report(self, flush_timeout: float = 1.0) -> str:
        """Several lines: calls, errors, breaker trips and recoveries, alerts, traces.

        First waits up to ``flush_timeout`` seconds for alert handlers to catch up, so alerts
        sent at the very end are counted.
        """
        if not self._closed:
            self.manager.alert_manager.flush(flush_timeout)
        s = self.summary()
        fired, resolved = sum(s.alerts_fired.values()), sum(s.alerts_resolved.values())
        breakers = "; ".join(f"{name} {state}" for name, state in sorted(s.breaker_states.items()))
        lines = [
            f"agent studio demo: {s.elapsed:.1f} s",
            f"  calls       {s.total_calls}: {_pairs(s.calls, ' ', ', ')}",
            f"  errors      {s.total_errors}: {_pairs(s.errors, ' ', ', ') or 'none'}",
            f"  breakers    {breakers}: tripped {s.breaker_trips} time(s), recovered "
            f"{s.breaker_recoveries} time(s); {s.fallback_calls} search(es) answered by the "
            "keyword fallback",
            f"  retries     {s.retries} embedding API retries",
            f"  alerts      fired {fired}" + (f" ({_pairs(s.alerts_fired, ' ', ', ')})"
                                              if s.alerts_fired else "")
            + f"; resolved {resolved}" + (f" ({_pairs(s.alerts_resolved, ' ', ', ')})"
                                          if s.alerts_resolved else ""),
            f"  traces      {s.traces_recorded} recorded{self._example_trace(s)}",
            f"  agent runs  {_pairs(s.agent_runs, ' ', ', ') or 'none'}",
            f"  files       {_pairs(s.files, ' ', ', ') or 'none'}",
        ]
        return "\n".join(lines)

    @staticmethod
    def _example_trace(s: DemoSummary) -> str:
        """``; latest agent run: trace <id> (N spans)`` while the tracer still holds it."""
        tree = None if s.example_trace_id is None else \
            execution_tracer.get_trace_tree(s.example_trace_id)
        if tree is None:
            return ""
        return f"; latest agent run: trace {s.example_trace_id} ({_count_spans(tree)} spans)"

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening to the breaker, the retries and the alerts. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self.manager.alert_manager.unregister_handler(self._count_alert)

    def __enter__(self) -> AgentStudioDemo:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _count_spans(tree: Mapping[str, object]) -> int:
    children = tree.get("children")
    kids = children if isinstance(children, list) else []
    return 1 + sum(_count_spans(kid) for kid in kids)
