"""A closed-loop load generator: N workers, each sending its next request when the last returns.

Why closed loop: it is how interactive clients and video streams behave (one frame in flight
per camera), it never builds an unbounded backlog on a slow system, and throughput at a fixed
concurrency is comparable across stages. Every point has a warm-up (not measured), then a
window bounded both by time and by request count; only requests that complete inside the
window count, and CPU is read at the window's edges.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from bench.cpu import CpuMeter, CpuSnapshot
from bench.stats import images_in_window

# One request: returns the number of images it processed, raises on failure.
Send = Callable[[], Awaitable[int]]
# Opens what one worker keeps for its whole life (a stream, say) and yields its `send`.
WorkerFactory = Callable[[int], AbstractAsyncContextManager[Send]]

# After a failed request a worker pauses this long, so an instant error cannot spin the loop.
ERROR_PAUSE_S = 0.005
# In-flight requests get this long to finish after the window; then they are cancelled.
MAX_DRAIN_S = 20.0
MAX_ERROR_EXAMPLES = 5


class RequestError(Exception):
    """A failed request with a short, countable kind (`grpc:UNAVAILABLE`, `http:503`)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True)
class LoadSettings:
    concurrency: int
    warmup_s: float
    measure_s: float
    max_requests: int
    request_timeout_s: float = 60.0

    @property
    def max_warmup_s(self) -> float:
        """Warm-up lasts until every worker has finished a request, but no longer than this."""
        return max(3 * self.warmup_s, self.warmup_s + 5.0)


@dataclass
class LoadResult:
    """What happened inside the measurement window."""

    latencies_ms: list[float] = field(default_factory=list)
    # Successful images completed inside the window, and the images' worth of work done
    # inside it (prorated; see bench.stats.images_in_window): the latter gives throughput.
    images: int = 0
    work_images: float = 0.0
    requests: int = 0
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)
    window_s: float = 0.0
    cpu_start: CpuSnapshot | None = None
    cpu_end: CpuSnapshot | None = None

    @property
    def throughput(self) -> float:
        """Images per second processed inside the window by successful requests."""
        return self.work_images / self.window_s if self.window_s > 0 else 0.0

    def require_clean(self, what: str) -> None:
        """Raise unless every request of the window was answered: a comparison stage (cache
        hit against miss, tracing on against off) means nothing with failures in either."""
        if self.errors or not self.latencies_ms:
            raise RuntimeError(
                f"{what}: {self.errors} errors, {len(self.latencies_ms)} answers"
                f" ({dict(self.error_kinds)}; {self.error_examples[:2]})"
            )


def _kind(error: BaseException) -> str:
    if isinstance(error, RequestError):
        return error.kind
    if isinstance(error, TimeoutError):
        return "timeout"
    return type(error).__name__


def _describe(error: BaseException) -> str:
    if isinstance(error, RequestError) or not str(error):
        return str(error) or _kind(error)
    return f"{_kind(error)}: {error}"


class _Window:
    """The measurement window's edges and the requests it has counted so far."""

    def __init__(self, max_requests: int) -> None:
        self.start: float | None = None
        self.end: float | None = None
        self.max_requests = max_requests
        self.full = asyncio.Event()
        self.result = LoadResult()
        # (began, finished, images) of every successful request, warm-up and drain included.
        self.successes: list[tuple[float, float, int]] = []

    def record(
        self, began: float, finished: float, images: int, error: BaseException | None
    ) -> None:
        if error is None:
            self.successes.append((began, finished, images))
        latency_ms = (finished - began) * 1000.0
        if self.start is None or finished < self.start or self.end is not None:
            return
        result = self.result
        result.requests += 1
        if error is None:
            result.latencies_ms.append(latency_ms)
            result.images += images
        else:
            result.errors += 1
            result.error_kinds[_kind(error)] += 1
            if len(result.error_examples) < MAX_ERROR_EXAMPLES:
                result.error_examples.append(_describe(error)[:300])
        if result.requests >= self.max_requests:
            # The window closes here, not when the controller next runs.
            self.end = finished
            self.full.set()


async def closed_loop(
    factory: WorkerFactory, settings: LoadSettings, *, meter: CpuMeter | None = None
) -> LoadResult:
    """Run `settings.concurrency` workers through warm-up and one measurement window."""
    window = _Window(settings.max_requests)
    stop = asyncio.Event()
    warmed = [asyncio.Event() for _ in range(settings.concurrency)]

    async def worker(index: int) -> None:
        async with factory(index) as send:
            while not stop.is_set():
                started = time.perf_counter()
                error: BaseException | None = None
                images = 0
                try:
                    async with asyncio.timeout(settings.request_timeout_s):
                        images = await send()
                except Exception as exc:  # every failure is data: counted, never fatal
                    error = exc
                finished = time.perf_counter()
                window.record(started, finished, images, error)
                warmed[index].set()
                if error is not None:
                    await asyncio.sleep(ERROR_PAUSE_S)

    tasks = [
        asyncio.create_task(worker(i), name=f"bench-worker-{i}")
        for i in range(settings.concurrency)
    ]
    try:
        await _warm_up(tasks, warmed, settings)
        window.result.cpu_start = meter.snapshot() if meter else None
        window.start = time.perf_counter()
        # Ends at the time limit, at the request limit, or when a worker dies (raised below).
        full = asyncio.create_task(window.full.wait())
        await asyncio.wait(
            [full, *tasks], timeout=settings.measure_s, return_when=asyncio.FIRST_COMPLETED
        )
        full.cancel()
        window.end = window.end or time.perf_counter()
        window.result.cpu_end = meter.snapshot() if meter else None
        window.result.window_s = window.end - window.start
    finally:
        stop.set()
        failures = await _drain(tasks, min(settings.request_timeout_s + 1.0, MAX_DRAIN_S))
    if failures:
        raise RuntimeError("a load-generator worker failed") from failures[0]
    if window.start is not None and window.end is not None:
        window.result.work_images = images_in_window(window.successes, window.start, window.end)
    return window.result


async def _warm_up(
    tasks: list[asyncio.Task[None]], warmed: list[asyncio.Event], settings: LoadSettings
) -> None:
    """Wait out the warm-up; fail early if a worker died (its factory could not connect)."""
    deadline = time.perf_counter() + settings.max_warmup_s
    await asyncio.sleep(settings.warmup_s)
    while not all(event.is_set() for event in warmed):
        _raise_if_dead(tasks)
        if time.perf_counter() >= deadline:
            break
        await asyncio.sleep(0.05)
    _raise_if_dead(tasks)


def _raise_if_dead(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise RuntimeError(f"{task.get_name()} stopped") from task.exception()


async def _drain(tasks: list[asyncio.Task[None]], limit_s: float) -> list[BaseException]:
    """Let in-flight requests finish, so the next point starts on an idle system; returns
    the errors that stopped workers (a worker whose factory failed, say)."""
    _, pending = await asyncio.wait(tasks, timeout=limit_s)
    for task in pending:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return [r for r in results if isinstance(r, Exception)]
