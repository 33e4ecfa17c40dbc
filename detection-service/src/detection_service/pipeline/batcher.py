"""One queue in front of Triton that turns concurrent single-frame calls into batched requests.

Detect, DetectStream frames and job workers each submit one encoded image (with its own
options) and await a future. A collector task takes the first waiting image, then whatever
else arrives until the batch is full (DETECT_MAX_BATCH, capped by the model's
max_batch_size) or the first image has waited DETECT_MAX_DELAY_MS, and sends one request.
At most DETECT_MAX_INFLIGHT_BATCHES requests are outstanding; while they run, new images
pile up and form the next, larger batch, so batch size grows with load and latency stays
low when idle.

Images wait in two lines (pipeline/lanes.py, ADR 0028): what a caller waits for (Detect,
DetectStream) and job work (batch items, video frames), so a running job neither queues
interactive images behind its backlog nor gets them refused; inside each, users take turns,
and one user may have at most DETECT_MAX_QUEUE_PER_USER images waiting.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import tritonclient.grpc as grpcclient
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext

from detection_service.metrics import DetectionMetrics
from detection_service.pipeline.lanes import Lane, Lanes
from detection_service.pipeline.triton import (
    RETRY_AFTER_SECONDS,
    BackendDown,
    ImageRequest,
    TritonModel,
    make_inputs,
)
from objectvision_common.errors import DomainError, TooManyWaiting, Unavailable
from objectvision_common.tracing import current_span_context, links_to, tracer
from objectvision_inference.detect_contract import ImageResult

logger = logging.getLogger(__name__)
_TRACER = tracer(__name__)


@dataclass(frozen=True)
class InferenceOutcome:
    """One image's answer from the model and where its time went."""

    result: ImageResult
    queue_ms: float
    inference_ms: float
    batch_size: int


@dataclass
class _Pending:
    image: ImageRequest
    future: asyncio.Future[InferenceOutcome]
    lane: Lane
    enqueued: float = field(default_factory=time.perf_counter)
    # The caller's span: the batch's span is its child (the first caller's) or links to it.
    span: SpanContext | None = field(default_factory=current_span_context)

    def abandoned(self) -> bool:
        """The caller gave up (its await was cancelled) or the answer is already in."""
        return self.future.done()


@dataclass(frozen=True, kw_only=True)
class BatchSettings:
    """How a MicroBatcher batches, as one object: ModelBatchers makes a batcher per model
    with the same settings, and passing them as one value keeps the two constructors from
    each spelling out (and drifting on) the same parameter list. ModelBatchers itself still
    takes them as keywords, as server.py and bench/gpu_encoded.py pass them."""

    executor: Executor
    metrics: DetectionMetrics
    max_batch: int
    max_delay_s: float
    request_timeout_s: float
    max_inflight_batches: int = 2
    # Per lane: a job's backlog never counts against interactive callers.
    max_queue: int = 512
    # Per user and lane: one user's flood is refused before it fills the lane for everybody.
    max_queue_per_user: int = 256
    background_share: float = 0.2


class MicroBatcher:
    def __init__(
        self, model: TritonModel, *, settings: BatchSettings, class_count: int = 80
    ) -> None:
        self._model = model
        self._class_count = class_count
        self._executor = settings.executor
        self._metrics = settings.metrics
        self._max_batch = settings.max_batch
        self._max_delay = settings.max_delay_s
        self._max_queue = settings.max_queue
        self._max_queue_per_user = settings.max_queue_per_user
        self._request_timeout = settings.request_timeout_s
        self._lanes: Lanes[_Pending] = Lanes(background_share=settings.background_share)
        self._slots = asyncio.Semaphore(settings.max_inflight_batches)
        self._sending: set[asyncio.Task[None]] = set()
        self._collector: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._collector = asyncio.create_task(self._collect_forever(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop collecting and fail whatever still waits, so no caller hangs at shutdown."""
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
            self._collector = None
        await asyncio.gather(*self._sending, return_exceptions=True)
        for pending in self._lanes.drain():
            if not pending.future.done():
                pending.future.set_exception(
                    Unavailable("the service is shutting down", retry_after_seconds=1)
                )

    async def infer(
        self,
        image: ImageRequest,
        *,
        user_id: str,
        time_limit_s: float,
        lane: Lane = Lane.INTERACTIVE,
    ) -> InferenceOutcome:
        """One image of ``user_id``'s answer; Unavailable if Triton cannot answer in time or
        ``lane``'s line is full, TooManyWaiting if this user's share of it is."""
        if self._collector is None:
            raise Unavailable("the service is not accepting work", retry_after_seconds=1)
        if self._lanes.waiting_for(lane, user_id) >= self._max_queue_per_user:
            raise TooManyWaiting(
                f"{self._max_queue_per_user} of your images are already waiting for inference:"
                " wait for answers before sending more",
                retry_after_seconds=1,
            )
        if self._lanes.waiting(lane) >= self._max_queue:
            raise Unavailable("too many images waiting for inference", retry_after_seconds=1)
        pending = _Pending(image, asyncio.get_running_loop().create_future(), lane)
        self._lanes.put(pending, lane, user_id=user_id)
        try:
            async with asyncio.timeout(time_limit_s):
                # Cancelling this await cancels the future; the collector skips such frames.
                return await pending.future
        except TimeoutError:
            raise Unavailable(
                "inference did not finish in time", retry_after_seconds=RETRY_AFTER_SECONDS
            ) from None

    async def _collect_forever(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                limit = min(self._max_batch, await self._model.max_batch_size() or self._max_batch)
                batch = await self._collect(limit)
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _collect(self, limit: int) -> list[_Pending]:
        """Frames of callers still waiting (the lanes drop those whose caller gave up)."""
        loop = asyncio.get_running_loop()
        first = await self._lanes.take()
        batch = [first]
        waited = time.perf_counter() - first.enqueued
        deadline = loop.time() + max(0.0, self._max_delay - waited)
        while len(batch) < limit:
            pending = self._lanes.take_nowait()
            if pending is None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        pending = await self._lanes.take()
                except TimeoutError:
                    break
            batch.append(pending)
        return batch

    async def _infer_through_backend_crash(
        self, inputs: list[grpcclient.InferInput]
    ) -> list[ImageResult]:
        """Triton's answer to one batch. A model's backend process that did not answer
        (BackendDown) is asked again once, as a slow one may have missed a health check, then
        once more after Triton was asked to load the model again (its process had crashed:
        Triton does not start it again itself); a batch that still fails is Unavailable, which
        a caller may retry and a job waits out."""
        try:
            return await self._model.infer(inputs, time_limit_s=self._request_timeout)
        except BackendDown:
            self._metrics.inference_errors.labels("backend_down").inc()
        try:
            return await self._model.infer(inputs, time_limit_s=self._request_timeout)
        except BackendDown:
            failed_at = time.monotonic()
            if not await self._model.restart_backend(
                failed_at=failed_at, time_limit_s=self._request_timeout
            ):
                raise
        return await self._model.infer(inputs, time_limit_s=self._request_timeout)

    async def _send(self, batch: Sequence[_Pending]) -> None:
        try:
            live = [p for p in batch if not p.future.done()]
            if not live:
                return
            sent = time.perf_counter()
            loop = asyncio.get_running_loop()
            first = live[0].span
            parent = trace.set_span_in_context(NonRecordingSpan(first)) if first else None
            with _TRACER.start_as_current_span(
                "triton batch",
                context=parent,
                links=links_to([p.span for p in live[1:]]),
                attributes={
                    "objectvision.batch_size": len(live),
                    "objectvision.batch_bytes": sum(len(p.image.data) for p in live),
                    "objectvision.model": self._model.model_name,
                },
            ) as span:
                inputs = await loop.run_in_executor(
                    self._executor, make_inputs, [p.image for p in live], self._class_count
                )
                results = await self._infer_through_backend_crash(inputs)
                stages = results[0].stage_ms if results else (0.0, 0.0, 0.0)
                span.set_attribute("triton.decode_ms", round(stages[0], 3))
                span.set_attribute("triton.network_ms", round(stages[1], 3))
                span.set_attribute("triton.nms_ms", round(stages[2], 3))
            inference_ms = (time.perf_counter() - sent) * 1000
            self._metrics.batch_size.observe(len(live))
            self._metrics.inference_latency.observe(inference_ms / 1000)
            for index, pending in enumerate(live):
                queue_ms = (sent - pending.enqueued) * 1000
                self._metrics.queue_wait.labels(pending.lane.value).observe(queue_ms / 1000)
                if not pending.future.done():
                    pending.future.set_result(
                        InferenceOutcome(results[index], queue_ms, inference_ms, len(live))
                    )
        except Exception as error:
            kind = "unavailable" if isinstance(error, Unavailable) else "error"
            self._metrics.inference_errors.labels(kind).inc()
            if not isinstance(error, DomainError):
                logger.exception("batched inference failed", extra={"batch": len(batch)})
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
        finally:
            self._slots.release()


class ModelBatchers:
    """One MicroBatcher per model, made on the model's first request.

    Why one per model rather than one queue: a Triton call names one model, so a batch must
    never mix models; separate queues also keep a slow model from holding a fast one's
    images back. Each batcher has its own Triton connection (``make_model``) and in-flight
    limit, and reads its model's own ``max_batch_size``.
    """

    def __init__(
        self,
        make_model: Callable[[str], TritonModel],
        *,
        executor: Executor,
        metrics: DetectionMetrics,
        max_batch: int,
        max_delay_s: float,
        request_timeout_s: float,
        max_inflight_batches: int = 2,
        max_queue: int = 512,
        max_queue_per_user: int = 256,
        background_share: float = 0.2,
    ) -> None:
        self._make_model = make_model
        self._settings = BatchSettings(
            executor=executor,
            metrics=metrics,
            max_batch=max_batch,
            max_delay_s=max_delay_s,
            request_timeout_s=request_timeout_s,
            max_inflight_batches=max_inflight_batches,
            max_queue=max_queue,
            max_queue_per_user=max_queue_per_user,
            background_share=background_share,
        )
        self._batchers: dict[str, tuple[TritonModel, MicroBatcher]] = {}
        self._started = False

    def start(self) -> None:
        self._started = True
        for _, batcher in self._batchers.values():
            batcher.start()

    def batcher(self, model_name: str, *, class_count: int) -> MicroBatcher:
        """The model's batcher (started if the others are)."""
        if model_name not in self._batchers:
            model = self._make_model(model_name)
            batcher = MicroBatcher(model, settings=self._settings, class_count=class_count)
            self._batchers[model_name] = (model, batcher)
            if self._started:
                batcher.start()
        return self._batchers[model_name][1]

    async def infer(
        self,
        model_name: str,
        image: ImageRequest,
        *,
        user_id: str,
        class_count: int,
        time_limit_s: float,
        lane: Lane = Lane.INTERACTIVE,
    ) -> InferenceOutcome:
        """One image's answer from this model, batched with other images for the same model."""
        batcher = self.batcher(model_name, class_count=class_count)
        return await batcher.infer(image, user_id=user_id, time_limit_s=time_limit_s, lane=lane)

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(b.stop() for _, b in self._batchers.values()))

    async def close(self) -> None:
        await asyncio.gather(*(m.close() for m, _ in self._batchers.values()))
