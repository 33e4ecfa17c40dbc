"""Live detection (ADR 0059): frames through the gateway's WebSocket against one REST request
a frame, from one run.

Two parts, each reported as figures and ratios, never judged against a target (none exists):

- Per-frame REST against the live WebSocket, at each of the stage's concurrencies (c=1 and
  c=8; quick: c=1 and c=4): `POST /api/v1/detect/image?store=false` (multipart, Bearer token,
  one request at a time per worker) against `/api/v1/ws/detect` (one stream per worker, the
  same token in its `Authorization` header, settings `{}`, one frame in flight), in
  alternating windows rest / live / rest / live of half the configured window each. Both
  cycle the benchmark's image set, each worker from its own offset. Reported per condition:
  frames/s and p50/p95 pooled over its windows, CPU per frame of the gateway, of every
  serving process and of the load generator; live/rest ratios; and how far the two rest
  windows drifted apart (a ratio within that of 1 is this run's noise).
- Pipelining on one stream: the same WebSocket with one frame in flight against
  `max_in_flight` frames in flight (the number its `ready` message gives, the most the
  gateway reads ahead), alternating single / pipelined / single / pipelined on that one
  connection. Latency is from a frame's send to its answer.

Why: a live stream pays for its connection, its credential check and its admission once, a
REST caller for every frame; and a stream that keeps several frames in flight lets the
detection service batch one caller's frames. On this 2-core CPU the model's ~100 ms of CPU a
frame dominates both, so what the figures show is the gateway's per-frame cost and how much
pipelining buys one camera, not a faster model.

Every answer is checked, warm-up included: a `detections` message (a `frame_error`, an
`error` or a close fails it), with the sequence the frame was sent as, in order, and the bus in
every bus.jpg frame's `counts` (REST: in its body); each stream's `{"type": "end"}` must get
`{"type": "ended"}` with every frame counted and a 1000 close. One wrong answer fails the
stage: a benchmark that measured errors measured nothing. The WebSocket client is
`websockets`' asyncio one without per-message compression, as the project's Python client
opens it (frames are JPEG already).
"""

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import json
import os
import statistics
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bench.cpu import CpuMeter
from bench.images import Image
from bench.loadgen import LoadResult, LoadSettings, RequestError, Send, WorkerFactory, closed_loop
from bench.records import LOADGEN
from bench.stages import StageContext, logger, window_estimate_s
from bench.stages.gateway import ROUTE, UploadRoute, caller_or_skip, mentions
from bench.stages.http import client
from bench.stages.switching import Window
from bench.stats import percentile, ratio, share
from objectvision_client.live import live_url

STAGE = "live"
LIVE_PATH = "/api/v1/ws/detect"
REST, LIVE = "rest", "live"
SINGLE, PIPELINED = "single", "pipelined"
# The image whose every answer must hold this class (the other stages' check, on every frame).
CHECKED_IMAGE, CHECKED_CLASS = "bus.jpg", "bus"
# The stream's settings: the deployment's defaults, untracked, as the REST route detects.
SETTINGS: dict[str, Any] = {}
# Windows per condition; together they last the configured window.
_WINDOWS = 2
# Warm-up per window at most: the stack is warm (the checks ran first) and each window's
# connections need only one answer each, which the warm-up waits for anyway.
MAX_WARMUP_S = 1.0
# The processes whose CPU per frame is reported on their own.
GATEWAY = "gateway"
# Answers are one frame's objects as JSON; this bounds one from a server gone wrong.
_MAX_ANSWER_BYTES = 16 * 1024 * 1024
# A stream's end: its answers still owed, `ended` and the close, within this.
_END_TIMEOUT_S = 30.0
# The load generator near a whole core (CPU seconds over wall seconds) may be what limits.
_LOADGEN_BUSY_SHARE = 0.7


@dataclass
class Checks:
    """Every answer of one condition, warm-up and drain included: how many, how many were the
    checked image with its class found, and what was wrong with the others."""

    answers: int = 0
    checked_frames: int = 0
    wrong: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def refuse(self, kind: str, detail: str) -> RequestError:
        """Count a wrong answer; the error its request fails with."""
        self.wrong[kind] += 1
        if len(self.examples) < 3:
            self.examples.append(f"{kind}: {detail}"[:300])
        return RequestError(kind, detail)

    def found(self, image: Image, has_class: bool) -> None:
        """Count a right answer (raises for the checked image without its class)."""
        if image.name == CHECKED_IMAGE:
            if not has_class:
                raise self.refuse("no_bus", f"no {CHECKED_CLASS} in the answer to {image.name}")
            self.checked_frames += 1
        self.answers += 1

    def check_live(self, image: Image, sequence: int, answer: Mapping[str, Any]) -> None:
        """A live answer: `detections`, this frame's sequence, the class in the checked image."""
        kind = answer.get("type")
        if kind == "frame_error":
            raise self.refuse("frame_error", str(answer.get("message"))[:200])
        if kind != "detections":
            raise self.refuse(f"live:{kind}", json.dumps(answer)[:200])
        if answer.get("sequence") != sequence:
            raise self.refuse(
                "out_of_order", f"frame {sequence} answered as {answer.get('sequence')!r}"
            )
        counts = answer.get("counts")
        self.found(image, isinstance(counts, Mapping) and counts.get(CHECKED_CLASS, 0) > 0)

    def check_rest(self, image: Image, body: Mapping[str, Any]) -> None:
        self.found(image, mentions(body, CHECKED_CLASS))

    def raise_if_wrong(self, what: str) -> None:
        if self.wrong:
            raise RuntimeError(
                f"{what}: {sum(self.wrong.values())} of {self.answers + sum(self.wrong.values())}"
                f" answers wrong ({dict(self.wrong)}; {self.examples}): this measured errors"
            )

    def to_json(self) -> dict[str, Any]:
        return {"answers": self.answers, "checked_frames": self.checked_frames}


class LiveStream:
    """One open `/api/v1/ws/detect` stream: frames sent in order under a lock, answers read by
    one task and handed to the frames' senders first in, first out, so several frames may be
    in flight at once."""

    def __init__(self, connection: ClientConnection, ready: Mapping[str, Any]) -> None:
        self._connection = connection
        self.max_in_flight = int(ready["max_in_flight"])
        self.max_frame_bytes = int(ready["max_frame_bytes"])
        self.sent = 0
        self._sending = asyncio.Lock()
        self._pending: collections.deque[asyncio.Future[dict[str, Any]]] = collections.deque()
        self._failure: RequestError | None = None
        self._ended: dict[str, Any] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, url: str, headers: Mapping[str, str], *, timeout_s: float
    ) -> AsyncIterator["LiveStream"]:
        """Connect, send the settings, read `ready`; on leaving without an error, end the
        stream and check it ended as the protocol says (RuntimeError otherwise)."""
        async with connect(
            url,
            additional_headers=dict(headers),
            compression=None,
            max_size=_MAX_ANSWER_BYTES,
            open_timeout=timeout_s,
            proxy=None,
        ) as connection:
            await connection.send(json.dumps(SETTINGS))
            async with asyncio.timeout(timeout_s):
                ready = json.loads(await connection.recv())
            if ready.get("type") != "ready":
                raise RuntimeError(f"the live stream opened with {ready!r:.300} instead of ready")
            stream = cls(connection, ready)
            reader = asyncio.create_task(stream._read(), name="bench-live-reader")
            try:
                yield stream
                await stream._end(reader)
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

    async def detect(self, data: bytes) -> tuple[int, dict[str, Any]]:
        """Send one frame and wait for its answer: (the sequence it was sent as, the answer)."""
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        async with self._sending:
            # Checked with no await before the append: a stream that fails later fails this
            # frame too, rather than leave it waiting for an answer that cannot come.
            if self._failure is not None:
                raise self._failure
            self.sent += 1
            sequence = self.sent
            self._pending.append(answer)
            try:
                await self._connection.send(data)
            except ConnectionClosed as error:
                raise RequestError("live:closed", str(error)) from None
        return sequence, await answer

    async def _read(self) -> None:
        """Hand each answer to the oldest frame still waiting; anything else ends the stream."""
        try:
            async for message in self._connection:
                body = json.loads(message) if isinstance(message, str) else None
                kind = body.get("type") if isinstance(body, dict) else None
                if body is not None and kind in ("detections", "frame_error") and self._pending:
                    waiting = self._pending.popleft()
                    if not waiting.done():  # not given up on (timed out)
                        waiting.set_result(body)
                elif kind == "ended" and body is not None:
                    self._ended = body
                else:
                    self._fail(RequestError(f"live:{kind or 'unexpected'}", str(message)[:200]))
                    return
        except (ConnectionClosed, WebSocketException, ValueError) as error:
            self._fail(RequestError("live:closed", repr(error)[:200]))
            return
        self._fail(RequestError("live:closed", f"closed {self._connection.close_code}"))

    def _fail(self, error: RequestError) -> None:
        """The stream is over: every frame still waiting fails with `error`, and so do later
        ones."""
        self._failure = error
        while self._pending:
            waiting = self._pending.popleft()
            if not waiting.done():
                waiting.set_exception(error)

    async def _end(self, reader: asyncio.Task[None]) -> None:
        """`{"type": "end"}`, then `ended` counting every frame sent, and a 1000 close."""
        if self._failure is not None:
            raise RuntimeError(f"the live stream failed: {self._failure}")
        await self._connection.send(json.dumps({"type": "end"}))
        async with asyncio.timeout(_END_TIMEOUT_S):
            await reader
        code = self._connection.close_code
        if self._ended is None or self._ended.get("frames") != self.sent or code != 1000:
            raise RuntimeError(
                f"the live stream ended with {self._ended!r} and close {code} after"
                f" {self.sent} frames, not ended with every frame and 1000"
            )


def _cycle(images: Sequence[Image], index: int) -> "itertools.islice[Image]":
    """The image set looped, worker `index` starting at its own offset."""
    return itertools.islice(itertools.cycle(images), index % len(images), None)


def rest_factory(
    http: httpx.AsyncClient,
    url: str,
    images: Sequence[Image],
    *,
    route: UploadRoute,
    headers: Mapping[str, str],
    checks: Checks,
) -> WorkerFactory:
    """Workers that upload the image set in turn, one request at a time, each answer checked."""

    @contextlib.asynccontextmanager
    async def factory(index: int) -> AsyncIterator[Send]:
        order = _cycle(images, index)

        async def send() -> int:
            image = next(order)
            checks.check_rest(image, await route.post(http, url, image, headers))
            return 1

        yield send

    return factory


def stream_factory(
    url: str,
    images: Sequence[Image],
    *,
    headers: Mapping[str, str],
    checks: Checks,
    timeout_s: float,
) -> WorkerFactory:
    """Each worker one stream of its own, one frame in flight, ended when the worker stops."""

    @contextlib.asynccontextmanager
    async def factory(index: int) -> AsyncIterator[Send]:
        async with LiveStream.open(url, headers, timeout_s=timeout_s) as stream:
            yield shared_sender(stream, images, index=index, checks=checks)

    return factory


def shared_sender(
    stream: LiveStream, images: Sequence[Image], *, index: int, checks: Checks
) -> Send:
    """A worker's frames on `stream` (which other workers may share: each worker one frame in
    flight, so as many in flight as workers), each answer checked."""
    order = _cycle(images, index)

    async def send() -> int:
        image = next(order)
        sequence, answer = await stream.detect(image.data)
        checks.check_live(image, sequence, answer)
        return 1

    return send


def shared_factory(stream: LiveStream, images: Sequence[Image], *, checks: Checks) -> WorkerFactory:
    """Workers that all send on one open stream: N workers keep N frames in flight on it."""

    @contextlib.asynccontextmanager
    async def factory(index: int) -> AsyncIterator[Send]:
        yield shared_sender(stream, images, index=index, checks=checks)

    return factory


def _window_settings(ctx: StageContext, concurrency: int) -> LoadSettings:
    full = ctx.settings(concurrency)
    return dataclasses.replace(
        full, warmup_s=min(full.warmup_s, MAX_WARMUP_S), measure_s=full.measure_s / _WINDOWS
    )


def _cpu_ms_per_frame(results: Sequence[LoadResult], processes: Sequence[str]) -> float | None:
    """CPU `processes` spent per frame of work inside the windows; None where unmetered."""
    spent = 0.0
    frames = 0.0
    for result in results:
        if result.cpu_start is None or result.cpu_end is None:
            return None
        cpu = CpuMeter.delta(result.cpu_start, result.cpu_end)
        spent += sum(cpu.get(name, 0.0) for name in processes)
        frames += result.work_images
    return round(1000.0 * spent / frames, 2) if frames and spent else None


def _loadgen_busy(results: Sequence[LoadResult]) -> float | None:
    """The load generator's CPU seconds over the windows' wall seconds: near 1, its one
    thread was what limited."""
    if any(r.cpu_start is None or r.cpu_end is None for r in results):
        return None
    seconds = sum(r.window_s for r in results)
    spent = sum(
        CpuMeter.delta(r.cpu_start, r.cpu_end).get(LOADGEN, 0.0)
        for r in results
        if r.cpu_start is not None and r.cpu_end is not None
    )
    return round(spent / seconds, 3) if seconds else None


def _other_load(results: Sequence[LoadResult]) -> float | None:
    """The share of the machine's CPU that none of the metered processes used during the
    windows: other people's work, which moves every figure of a shared machine."""
    busy = 0.0
    ours = 0.0
    seconds = 0.0
    for result in results:
        if result.cpu_start is None or result.cpu_end is None:
            return None
        busy += result.cpu_end.system_busy_s - result.cpu_start.system_busy_s
        ours += sum(CpuMeter.delta(result.cpu_start, result.cpu_end).values())
        seconds += result.window_s
    cores = len(os.sched_getaffinity(0))
    return round(max(0.0, busy - ours) / (seconds * cores), 3) if seconds else None


def pooled(
    windows: Sequence[Window],
    conditions: Sequence[str],
    *,
    involved: Sequence[str],
) -> dict[str, Any]:
    """Figures per condition pooled over its windows, the windows themselves, and how far the
    first condition's first and last windows drifted apart (a share of its pooled
    throughput)."""
    by_condition = {c: [w for w in windows if w.condition == c] for c in conditions}
    throughput: dict[str, float] = {}
    p50: dict[str, float] = {}
    p95: dict[str, float] = {}
    for condition, chosen in by_condition.items():
        work = sum(w.result.work_images for w in chosen)
        seconds = sum(w.result.window_s for w in chosen)
        latencies = [ms for w in chosen for ms in w.result.latencies_ms]
        throughput[condition] = round(work / seconds, 2) if seconds else 0.0
        p50[condition] = round(statistics.median(latencies), 2)
        p95[condition] = round(percentile(latencies, 95), 2)
    baseline = by_condition[conditions[0]]
    drift = (
        round(
            abs(baseline[-1].result.throughput - baseline[0].result.throughput)
            / throughput[conditions[0]],
            3,
        )
        if throughput[conditions[0]]
        else None
    )
    results = {c: [w.result for w in chosen] for c, chosen in by_condition.items()}
    return {
        "windows": [w.summary() for w in windows],
        "throughput_fps": throughput,
        "p50_ms": p50,
        "p95_ms": p95,
        "drift": drift,
        "gateway_cpu_ms_per_frame": {
            c: _cpu_ms_per_frame(r, [GATEWAY]) for c, r in results.items()
        },
        "server_cpu_ms_per_frame": {c: _cpu_ms_per_frame(r, involved) for c, r in results.items()},
        "loadgen_cpu_ms_per_frame": {
            c: _cpu_ms_per_frame(r, [LOADGEN]) for c, r in results.items()
        },
        "loadgen_busy": {c: _loadgen_busy(r) for c, r in results.items()},
        "other_load": {c: _other_load(r) for c, r in results.items()},
    }


def compare(
    windows: Sequence[Window], *, concurrency: int, involved: Sequence[str]
) -> dict[str, Any]:
    """One concurrency's row: REST against live from their alternating windows."""
    found = pooled(windows, (REST, LIVE), involved=involved)
    found["rest_drift"] = found.pop("drift")
    return {
        "concurrency": concurrency,
        **found,
        "live_over_rest": {
            "throughput": ratio(found["throughput_fps"][LIVE], found["throughput_fps"][REST]),
            "p50": ratio(found["p50_ms"][LIVE], found["p50_ms"][REST]),
            "p95": ratio(found["p95_ms"][LIVE], found["p95_ms"][REST]),
        },
    }


def compare_pipelining(
    windows: Sequence[Window], *, max_in_flight: int, involved: Sequence[str]
) -> dict[str, Any]:
    """One stream, one frame in flight against `max_in_flight`, from their windows."""
    found = pooled(windows, (SINGLE, PIPELINED), involved=involved)
    found["single_drift"] = found.pop("drift")
    return {
        "max_in_flight": max_in_flight,
        **found,
        "pipelined_over_single": {
            "throughput": ratio(
                found["throughput_fps"][PIPELINED], found["throughput_fps"][SINGLE]
            ),
            "p50": ratio(found["p50_ms"][PIPELINED], found["p50_ms"][SINGLE]),
        },
    }


def _log(condition: str, concurrency: int, result: LoadResult, window: Window) -> None:
    logger.info(
        "live %-9s c=%d %7.1f frames/s  p50 %7.1f ms",
        condition,
        concurrency,
        result.throughput,
        window.p50_ms,
    )


@dataclass
class _Route:
    """What the stage reaches the gateway with."""

    base_url: str
    upload: UploadRoute
    headers: dict[str, str]

    @property
    def rest_url(self) -> str:
        return f"{self.base_url}{ROUTE}"

    @property
    def live_url(self) -> str:
        return live_url(self.base_url)


async def _window(
    ctx: StageContext,
    route: _Route,
    condition: str,
    concurrency: int,
    checks: Checks,
) -> Window:
    settings = _window_settings(ctx, concurrency)
    timeout_s = ctx.config.request_timeout_s
    if condition == REST:
        async with client(concurrency, timeout_s) as pool:
            factory = rest_factory(
                pool,
                route.rest_url,
                ctx.images,
                route=route.upload,
                headers=route.headers,
                checks=checks,
            )
            result = await closed_loop(factory, settings, meter=ctx.meter)
    else:
        factory = stream_factory(
            route.live_url, ctx.images, headers=route.headers, checks=checks, timeout_s=timeout_s
        )
        result = await closed_loop(factory, settings, meter=ctx.meter)
    checks.raise_if_wrong(f"live stage, {condition} at c={concurrency}")
    result.require_clean(f"live stage, {condition} at c={concurrency}")
    window = Window(condition, result)
    _log(condition, concurrency, result, window)
    return window


async def _check(ctx: StageContext, route: _Route) -> dict[str, Any]:
    """Before anything is timed: bus.jpg through the REST route finds the bus, and one stream
    answers every image of the set in order with the bus in bus.jpg. The stream's `ready`."""
    async with httpx.AsyncClient(timeout=ctx.config.request_timeout_s) as http:
        body = await route.upload.post(http, route.rest_url, ctx.images[0], route.headers)
    if ctx.images[0].name == CHECKED_IMAGE and not mentions(body, CHECKED_CLASS):
        raise RuntimeError(f"the gateway finds no bus in bus.jpg: {str(body)[:300]}")
    checks = Checks()
    timeout_s = ctx.config.request_timeout_s
    async with LiveStream.open(route.live_url, route.headers, timeout_s=timeout_s) as stream:
        send = shared_sender(stream, ctx.images, index=0, checks=checks)
        for _ in ctx.images:
            try:
                await send()
            except RequestError as error:
                raise RuntimeError(f"the live stream's check failed: {error}") from None
        ready = {"max_in_flight": stream.max_in_flight, "max_frame_bytes": stream.max_frame_bytes}
    if any(image.name == CHECKED_IMAGE for image in ctx.images) and not checks.checked_frames:
        raise RuntimeError("the live stream never answered bus.jpg with a bus")
    return ready


async def _pipelining(
    ctx: StageContext, route: _Route, max_in_flight: int, checks: Mapping[str, Checks]
) -> list[Window]:
    """Single and pipelined windows, alternating, on one stream kept open throughout."""
    windows: list[Window] = []
    timeout_s = ctx.config.request_timeout_s
    async with LiveStream.open(route.live_url, route.headers, timeout_s=timeout_s) as stream:
        for _ in range(_WINDOWS):
            for condition, in_flight in ((SINGLE, 1), (PIPELINED, max_in_flight)):
                factory = shared_factory(stream, ctx.images, checks=checks[condition])
                result = await closed_loop(
                    factory, _window_settings(ctx, in_flight), meter=ctx.meter
                )
                checks[condition].raise_if_wrong(f"live stage, one stream {condition}")
                result.require_clean(f"live stage, one stream {condition}")
                window = Window(condition, result)
                _log(condition, in_flight, result, window)
                windows.append(window)
    return windows


async def run(
    ctx: StageContext, *, base_url: str, involved: Sequence[str]
) -> dict[str, Any] | None:
    """The live section of the result, or None when skipped (budget, route missing)."""
    concurrencies = ctx.config.concurrencies_for(STAGE)
    first = _window_settings(ctx, min(concurrencies))
    if not ctx.within_budget(STAGE, seconds=2 * _WINDOWS * window_estimate_s(first)):
        return None
    resolved = await caller_or_skip(ctx, stage=STAGE, base_url=base_url)
    if resolved is None:
        return None
    upload, headers = resolved
    route = _Route(base_url, upload, headers)
    ready = await _check(ctx, route)
    logger.info("live stream ready: %s", ready)
    checks = {condition: Checks() for condition in (REST, LIVE, SINGLE, PIPELINED)}
    rows = []
    for concurrency in concurrencies:
        settings = _window_settings(ctx, concurrency)
        if not ctx.within_budget(
            STAGE, seconds=2 * _WINDOWS * window_estimate_s(settings), concurrency=concurrency
        ):
            continue
        windows = [
            await _window(ctx, route, condition, concurrency, checks[condition])
            for _ in range(_WINDOWS)
            for condition in (REST, LIVE)
        ]
        rows.append(compare(windows, concurrency=concurrency, involved=involved))
    pipelining = None
    max_in_flight = ready["max_in_flight"]
    if max_in_flight < 2:
        ctx.note(f"live stage: the gateway keeps {max_in_flight} frame in flight: no pipelining")
    elif ctx.budget.allows(2 * _WINDOWS * window_estimate_s(first)):
        windows = await _pipelining(ctx, route, max_in_flight, checks)
        pipelining = compare_pipelining(windows, max_in_flight=max_in_flight, involved=involved)
    else:
        ctx.skip(STAGE, "one stream pipelined: the run's time budget was spent")
    if not rows and pipelining is None:
        return None
    section = {
        "rest": f"POST {ROUTE}?store=false, multipart, one request at a time per worker",
        "live": f"{LIVE_PATH}, one stream per worker, one frame in flight, settings {{}}",
        "images": len(ctx.images),
        "max_frame_bytes": ready["max_frame_bytes"],
        "max_in_flight": max_in_flight,
        "compression": None,
        "rows": rows,
        "pipelining": pipelining,
        "answers": {condition: found.to_json() for condition, found in checks.items()},
        "answers_verified": True,
    }
    _note_loadgen(ctx, section)
    return section


def _note_loadgen(ctx: StageContext, section: Mapping[str, Any]) -> None:
    """Say so where the load generator's one thread was near a whole core."""
    parts = [*section["rows"], *([section["pipelining"]] if section["pipelining"] else [])]
    busiest = max(
        (share for part in parts for share in part["loadgen_busy"].values() if share is not None),
        default=None,
    )
    if busiest is not None and busiest >= _LOADGEN_BUSY_SHARE:
        ctx.note(
            f"live stage: the load generator used up to {busiest:.0%} of a core in a window;"
            " its figures may be limited by the client"
        )


def _fig(value: float | None) -> str:
    return "-" if value is None else f"{value}"


def _table(part: Mapping[str, Any], conditions: Sequence[tuple[str, str]]) -> list[str]:
    per_window = {
        condition: ", ".join(
            str(w["throughput_fps"]) for w in part["windows"] if w["condition"] == condition
        )
        for condition, _ in conditions
    }
    return [
        f"| {label} | {part['throughput_fps'][condition]} | {part['p50_ms'][condition]}"
        f" | {part['p95_ms'][condition]} | {per_window[condition]}"
        f" | {_fig(part['gateway_cpu_ms_per_frame'][condition])}"
        f" | {_fig(part['server_cpu_ms_per_frame'][condition])}"
        f" | {_fig(part['loadgen_cpu_ms_per_frame'][condition])}"
        f" | {share(part['loadgen_busy'][condition])}"
        f" | {share(part.get('other_load', {}).get(condition))} |"
        for condition, label in conditions
    ]


_HEADER = (
    " | frames/s | p50 ms | p95 ms | frames/s per window | gateway CPU ms/frame"
    " | server CPU ms/frame | loadgen CPU ms/frame | loadgen busy | other load |"
)
_ALIGN = " | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"


def markdown(section: Mapping[str, Any]) -> list[str]:
    """The section as Markdown lines for bench/report.py: a table per part that ran."""
    answers = section["answers"]
    checked = sum(found["answers"] for found in answers.values())
    buses = sum(found["checked_frames"] for found in answers.values())
    out = [
        "## Live detection: the WebSocket against a REST request a frame, through the gateway,"
        " one run",
        "",
        f"REST: {section['rest']}. Live: {section['live']}. Both cycle the {section['images']}"
        f" images; windows alternate rest / live / rest / live. Every answer checked ({checked},"
        f" warm-up included, {buses} of them bus.jpg with its bus), in order, none an error."
        " *server CPU* sums the processes that serve the route, *loadgen busy* is the load"
        " generator's CPU over wall time (near 100%, the client limited), *other load* the"
        " share of the machine that none of our processes used.",
        "",
    ]
    if section["rows"]:
        out += [f"| c | path{_HEADER}", f"| ---: | ---{_ALIGN}"]
        for row in section["rows"]:
            out += [
                f"| {row['concurrency']} {line}"
                for line in _table(row, ((REST, "REST"), (LIVE, "WebSocket")))
            ]
        out += [
            "",
            *(
                f"c={row['concurrency']}: live/REST throughput"
                f" {_fig(row['live_over_rest']['throughput'])}, p50"
                f" {_fig(row['live_over_rest']['p50'])}, p95 {_fig(row['live_over_rest']['p95'])};"
                f" the REST windows alone differ by {share(row['rest_drift'])} of their"
                " throughput (a ratio within that of 1 is this run's noise)."
                for row in section["rows"]
            ),
            "",
        ]
    if pipelined := section.get("pipelining"):
        n = pipelined["max_in_flight"]
        ratios = pipelined["pipelined_over_single"]
        out += [
            f"One stream, one frame in flight against {n} (the `max_in_flight` of its `ready`),"
            " alternating on the same connection; latency from a frame's send to its answer:",
            "",
            f"| frames in flight{_HEADER}",
            f"| ---:{_ALIGN}",
            *_table(pipelined, ((SINGLE, "1"), (PIPELINED, str(n)))),
            "",
            f"Pipelined/single: throughput {_fig(ratios['throughput'])}, p50"
            f" {_fig(ratios['p50'])}; the single windows alone differ by"
            f" {share(pipelined['single_drift'])} of their throughput.",
            "",
        ]
    return out
