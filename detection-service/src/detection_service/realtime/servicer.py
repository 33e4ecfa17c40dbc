"""The realtime RPCs of DetectionService: ListModels, Detect and DetectStream.

Why apart from the rest of the servicer: they need only the inference pipeline, so the
realtime role (ADR 0019) serves them with no database, Redis, storage or video decoder, and
scales on the GPU's load alone. The full service's servicer extends this class with stored
results, jobs and video, and gives Detect a store for `store=true`.

Every RPC is scoped to the principal the gateway signed; uploads are refused from their
headers before anything is decoded.
"""

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from opentelemetry import trace

from detection_service.images.uploads import Upload, sanitize_filename
from detection_service.pipeline.catalog import ServedModel
from detection_service.pipeline.detector import Detector
from detection_service.pipeline.types import DetectedObject, DetectionOptions, DetectionResult
from detection_service.tracking.counting import RegionCounter, track_and_count
from detection_service.tracking.lines import LineCrossing, checked_lines
from detection_service.tracking.messages import counting_lines, counting_zones, crossings_reply
from detection_service.tracking.tracker import ObjectTracker, TrackingSettings
from detection_service.tracking.zones import checked_zones
from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc
from objectvision_common.errors import DomainError, FailedPrecondition, InvalidArgument, Unavailable
from objectvision_common.grpc_server import ServiceRegistration
from objectvision_common.identity import principal_from_metadata
from objectvision_common.limits import checked_idempotency_key, checked_metadata
from objectvision_common.servicer import ServicerContext

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class KeptDetect:
    """What a store made of a Detect: the ids of the detections it kept, or, when a request
    with the same idempotency key stored first (a concurrent retry), that request's results."""

    ids: Sequence[uuid.UUID] = ()
    replayed: Sequence[detection_pb2.ImageResult] | None = None


class DetectionStore(Protocol):
    """Keeps a Detect's uploads with their detections and its metadata (`store=true`), and
    answers a retry of a stored Detect from what it kept (ADR 0047)."""

    async def keep(
        self,
        *,
        user_id: str,
        uploads: Sequence[Upload],
        outcomes: Sequence[DetectionResult],
        options: DetectionOptions,
        now: datetime,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> KeptDetect: ...

    async def replay(
        self, *, user_id: str, idempotency_key: str
    ) -> Sequence[detection_pb2.ImageResult] | None:
        """The results the account's stored Detect with this key kept; None for a new key."""
        ...


def _replayed(
    results: Sequence[detection_pb2.ImageResult], *, sent: int, idempotency_key: str
) -> detection_pb2.DetectResponse:
    """The answer to a retry: what the first request with its key stored. A request of
    another size with the same key is not a retry of it (InvalidArgument)."""
    if len(results) != sent:
        raise InvalidArgument(
            f"idempotency key {idempotency_key!r} was used by an earlier request that stored"
            f" {len(results)} image(s), and this one sends {sent}: a retry sends the same"
            " images; use a new key for a new request"
        )
    return detection_pb2.DetectResponse(results=results, replayed=True)


async def _gather_or_cancel(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Run concurrently; on the first error cancel the rest and raise that error."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def objects_reply(objects: Sequence[DetectedObject]) -> list[detection_pb2.DetectedObject]:
    return [
        detection_pb2.DetectedObject(
            class_name=obj.class_name,
            class_id=obj.class_id,
            confidence=obj.confidence,
            box=detection_pb2.BoundingBox(x1=obj.x1, y1=obj.y1, x2=obj.x2, y2=obj.y2),
            track_id=obj.track_id,
            zones=obj.zones,
        )
        for obj in objects
    ]


def image_result_reply(
    result: DetectionResult, *, filename: str, detection_id: uuid.UUID | None
) -> detection_pb2.ImageResult:
    return detection_pb2.ImageResult(
        detection_id=str(detection_id) if detection_id else "",
        width=result.width,
        height=result.height,
        objects=objects_reply(result.objects),
        timings=detection_pb2.Timings(**result.timings.to_json()),
        filename=filename,
        cached=result.cached,
        model=result.model,
        model_version=result.model_version,
    )


def _model(model: ServedModel, *, default: str) -> detection_pb2.Model:
    described = model.description
    return detection_pb2.Model(
        name=model.name,
        version=model.version,
        task=described.task,
        input_size=described.input_size,
        classes=list(described.classes),
        precision=described.precision,
        device=described.device,
        ready=model.ready,
        state=model.state,
        reason=model.reason,
        default=model.name == default,
    )


class RealtimeServicer(detection_pb2_grpc.DetectionServiceServicer):
    """Detections answered, nothing kept: what every detection-service process serves.

    `store` None: the process keeps nothing, and a Detect asking to store is refused before
    any inference (FAILED_PRECONDITION naming the role), not answered without its ids.
    """

    def __init__(
        self,
        *,
        detector: Detector,
        service_secret: str,
        max_batch_files: int,
        stream_max_in_flight: int,
        tracking: TrackingSettings,
        store: DetectionStore | None = None,
    ) -> None:
        self._detector = detector
        self._secret = service_secret
        self._max_batch_files = max_batch_files
        self._stream_max_in_flight = stream_max_in_flight
        self._tracking = tracking
        self._store = store

    def _principal(self, context: ServicerContext) -> common_pb2.Principal:
        """The caller the gateway signed; its user id, never an email or a token, names the
        caller on the call's span."""
        principal = principal_from_metadata(context.invocation_metadata(), secret=self._secret)
        trace.get_current_span().set_attribute("enduser.id", principal.user_id)
        return principal

    def _user_id(self, context: ServicerContext) -> str:
        return self._principal(context).user_id

    async def _options(
        self, params: detection_pb2.DetectionParams
    ) -> tuple[DetectionOptions, ServedModel]:
        """The request's model (NotFound / Unavailable while loading) and its options, the
        classes checked against that model's."""
        model = await self._detector.resolve(params.model)
        return self._params(params, model), model

    def _params(
        self, params: detection_pb2.DetectionParams, model: ServedModel | None
    ) -> DetectionOptions:
        """The request's thresholds with defaults applied, its classes checked against
        `model`'s (None: the default model's)."""
        return self._detector.options(
            confidence=params.confidence,
            iou=params.iou,
            classes=params.classes,
            max_detections=params.max_detections,
            model=model,
            class_confidence=params.class_confidence,
            tile_size=params.tile_size,
            tile_overlap=params.tile_overlap,
            regions=[[(point.x, point.y) for point in region.polygon] for region in params.regions],
        )

    async def ListModels(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.ListModelsRequest, context: ServicerContext
    ) -> detection_pb2.ListModelsResponse:
        self._user_id(context)
        default = self._detector.default_model
        models = await self._detector.models()
        return detection_pb2.ListModelsResponse(
            models=[_model(model, default=default) for model in models], default_model=default
        )

    def _uploads(self, images: Sequence[detection_pb2.ImageInput]) -> list[Upload]:
        """Every image checked from its header; the first unfit one refuses the whole request."""
        if not images:
            raise InvalidArgument("send at least one image")
        if len(images) > self._max_batch_files:
            raise InvalidArgument(
                f"{len(images)} images sent; at most {self._max_batch_files} per request"
            )
        uploads = []
        for position, image in enumerate(images):
            try:
                header = self._detector.inspect(image.data)
            except DomainError as error:
                name = sanitize_filename(image.filename) or f"#{position + 1}"
                raise type(error)(f"image {name}: {error.message}") from None
            uploads.append(Upload(image.data, sanitize_filename(image.filename), header))
        return uploads

    async def Detect(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.DetectRequest, context: ServicerContext
    ) -> detection_pb2.DetectResponse:
        principal = self._principal(context)
        user_id = principal.user_id
        store = self._store if request.store else None
        if request.store and store is None:
            raise FailedPrecondition(
                "this detection-service replica runs the realtime role and keeps nothing: send"
                " store=false, or call the full service to keep results in the history"
            )
        metadata = checked_metadata(request.metadata)
        if metadata and not request.store:
            raise InvalidArgument(
                "metadata is kept with the stored detections, and store=false keeps none: "
                "send store=true, or leave the metadata out"
            )
        key = checked_idempotency_key(request.idempotency_key)
        if key and not request.store:
            raise InvalidArgument(
                "an idempotency key makes a stored Detect safe to retry, and store=false keeps"
                " nothing to answer a retry with: send store=true, or leave the key out"
            )
        uploads = self._uploads(request.images)
        if store is not None and key:
            # A retry is answered whatever the quota says now, as a job's is: it costs nothing.
            earlier = await store.replay(user_id=user_id, idempotency_key=key)
            if earlier is not None:
                return _replayed(earlier, sent=len(uploads), idempotency_key=key)
        options, model = await self._options(request.params)
        await self._detector.admit(principal, images=len(uploads))
        time_limit_s = context.time_remaining()
        outcomes = await _gather_or_cancel(
            self._detector.detect(
                u.data,
                options,
                user_id=user_id,
                model=model,
                time_limit_s=time_limit_s,
                header=u.header,
            )
            for u in uploads
        )
        ids: Sequence[uuid.UUID | None] = [None] * len(uploads)
        if store is not None:
            kept = await store.keep(
                user_id=user_id,
                uploads=uploads,
                outcomes=outcomes,
                options=options,
                now=datetime.now(UTC),
                metadata=metadata,
                idempotency_key=key,
            )
            if kept.replayed is not None:
                return _replayed(kept.replayed, sent=len(uploads), idempotency_key=key)
            ids = kept.ids
        return detection_pb2.DetectResponse(
            results=[
                image_result_reply(outcome, filename=upload.filename, detection_id=detection_id)
                for upload, outcome, detection_id in zip(uploads, outcomes, ids, strict=True)
            ]
        )

    async def DetectStream(  # noqa: N802 - gRPC method name
        self,
        request_iterator: AsyncIterator[detection_pb2.Frame],
        context: ServicerContext,
    ) -> AsyncIterator[detection_pb2.FrameDetections]:
        """Frames are detected concurrently but answered in order.

        At most DETECT_STREAM_MAX_IN_FLIGHT frames are read ahead of the oldest unanswered one;
        beyond that the reader stops, and gRPC flow control pushes back on the sender. A
        tracked stream (the first frame's `track`) follows its objects in that answering
        order, the only order a tracker may see frames in, and counts their crossings of the
        first frame's `lines` (ADR 0039) and names the `zones` they stand in (ADR 0042) in the
        same order; a frame that a line or zone leaves ends the stream (INVALID_ARGUMENT)
        before its answer. A first frame without an image only sets the stream up, and is answered
        `ready` once its settings are checked: a caller learns of an unknown model or refused
        lines before it sends a picture (the gateway's live WebSocket, ADR 0059).
        """
        principal = self._principal(context)
        self._detector.require_verified(principal)
        in_flight: asyncio.Queue[asyncio.Future[_FrameOutcome] | None] = asyncio.Queue(
            maxsize=self._stream_max_in_flight
        )
        tracker: ObjectTracker | None = None
        counter: RegionCounter | None = None

        async def read() -> None:
            # The model and options come from the first frame; an unknown model ends the
            # stream (NOT_FOUND), one that is loading ends it UNAVAILABLE with Retry-After;
            # so do counting lines or zones it may not have (INVALID_ARGUMENT).
            nonlocal tracker, counter
            chosen: tuple[DetectionOptions, ServedModel] | None = None
            try:
                async for frame in request_iterator:
                    if chosen is None:
                        lines = checked_lines(counting_lines(frame.lines), tracked=frame.track)
                        zones = checked_zones(counting_zones(frame.zones), tracked=frame.track)
                        chosen = await self._options(frame.params)
                        if frame.track:
                            tracker = ObjectTracker(self._tracking, frame_rate=frame.frame_rate)
                        counter = RegionCounter.of(lines, zones)
                        if not frame.image.data:
                            await in_flight.put(_settled(_FrameOutcome.settings_accepted(frame)))
                            continue
                    options, model = chosen
                    await in_flight.put(
                        asyncio.ensure_future(self._frame(frame, options, model, principal))
                    )
            finally:
                await in_flight.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (task := await in_flight.get()) is not None:
                outcome = await task
                if tracker is not None and outcome.result is not None:
                    objects, crossings = await asyncio.to_thread(
                        track_and_count,
                        tracker,
                        counter,
                        outcome.result.objects,
                        (outcome.result.width, outcome.result.height),
                    )
                    outcome = dataclasses.replace(
                        outcome,
                        result=dataclasses.replace(outcome.result, objects=objects),
                        crossings=crossings,
                    )
                yield outcome.reply()
            await reader
        finally:
            reader.cancel()
            while not in_flight.empty():
                if (task := in_flight.get_nowait()) is not None:
                    task.cancel()

    async def _frame(
        self,
        frame: detection_pb2.Frame,
        options: DetectionOptions,
        model: ServedModel,
        principal: common_pb2.Principal,
    ) -> "_FrameOutcome":
        """One frame's outcome. A bad image, or inference that could not finish in time
        (overload, Triton briefly away), becomes that frame's `error`: a video stream outlives
        one frame."""
        filename = sanitize_filename(frame.image.filename)
        try:
            await self._detector.admit(principal, images=1)
            outcome = await self._detector.detect(
                frame.image.data, options, user_id=principal.user_id, model=model
            )
        except Unavailable as error:
            return _FrameOutcome(frame.sequence, filename, error=f"unavailable: {error.message}")
        except DomainError as error:
            return _FrameOutcome(frame.sequence, filename, error=error.message)
        return _FrameOutcome(frame.sequence, filename, result=outcome)


def _settled(outcome: "_FrameOutcome") -> "asyncio.Future[_FrameOutcome]":
    """An outcome known at once, queued among the frames still being detected."""
    future: asyncio.Future[_FrameOutcome] = asyncio.get_running_loop().create_future()
    future.set_result(outcome)
    return future


@dataclasses.dataclass(frozen=True)
class _FrameOutcome:
    """A stream frame's detections, or why it has none, or (`ready`) the acceptance of a
    first frame that only set the stream up."""

    sequence: int
    filename: str
    result: DetectionResult | None = None
    error: str = ""
    crossings: tuple[LineCrossing, ...] = ()
    ready: bool = False

    @classmethod
    def settings_accepted(cls, frame: detection_pb2.Frame) -> "_FrameOutcome":
        return cls(frame.sequence, "", ready=True)

    def reply(self) -> detection_pb2.FrameDetections:
        if self.ready:
            return detection_pb2.FrameDetections(sequence=self.sequence, ready=True)
        if self.result is None:
            return detection_pb2.FrameDetections(sequence=self.sequence, error=self.error)
        return detection_pb2.FrameDetections(
            sequence=self.sequence,
            result=image_result_reply(self.result, filename=self.filename, detection_id=None),
            crossings=crossings_reply(self.crossings),
        )


def registration(servicer: RealtimeServicer) -> ServiceRegistration:
    """The servicer (realtime, or the full one that extends it) as DetectionService."""
    return ServiceRegistration(
        name=detection_pb2.DESCRIPTOR.services_by_name["DetectionService"].full_name,
        servicer=servicer,
        add_to_server=detection_pb2_grpc.add_DetectionServiceServicer_to_server,
    )
