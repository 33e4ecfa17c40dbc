"""One image through the whole path: header checks here, everything else in Triton.

Detect, DetectStream and the job workers all call `Detector.detect`. The service is the
gatekeeper, not the worker: it refuses unfit uploads from their headers (a pixel bomb never
reaches a decoder), then forwards the upload's bytes unchanged through the micro-batcher;
Triton decodes, letterboxes, runs the network and NMS, and answers in original pixels
(ADR 0010). Annotated images are decoded and drawn in confined children (ADR 0043).
"""

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import Counter

from detection_service.metrics import ModelMonitor
from detection_service.pipeline import decode as imaging
from detection_service.pipeline import regions as interest
from detection_service.pipeline import tiling
from detection_service.pipeline.annotate import BOXES, Rendering
from detection_service.pipeline.annotation_sandbox import SandboxedAnnotator
from detection_service.pipeline.batcher import InferenceOutcome, ModelBatchers
from detection_service.pipeline.catalog import ModelCatalog, ServedModel
from detection_service.pipeline.header import ImageHeader
from detection_service.pipeline.lanes import Lane
from detection_service.pipeline.result_cache import (
    CachedAnswer,
    ResultCache,
    content_key,
    image_digest,
)
from detection_service.pipeline.triton import ImageRequest
from detection_service.pipeline.types import (
    DetectedObject,
    DetectionOptions,
    DetectionResult,
    Timings,
)
from detection_service.usage.sources import SOURCE_CALLS, SOURCE_JOBS
from objectvision.v1 import common_pb2
from objectvision_common.errors import (
    DomainError,
    EmailNotVerified,
    InvalidArgument,
    PayloadTooLarge,
    Unavailable,
)
from objectvision_common.limits import (
    DEFAULT_TILE_OVERLAP,
    MAX_CLASS_CONFIDENCES,
    MAX_DETECTIONS_LIMIT,
    MAX_REDACTED_CLASSES,
    MAX_TILE_OVERLAP,
    MAX_TILE_SIZE,
    MAX_TILES_PER_IMAGE,
    MIN_TILE_SIZE,
)
from objectvision_common.tracing import tracer
from objectvision_inference import detect_contract as contract

if TYPE_CHECKING:
    # The meter reads PostgreSQL; the realtime role imports this module without it.
    from sqlalchemy.ext.asyncio import AsyncSession

    from detection_service.usage.meter import UsageMeter

_TRACER = tracer(__name__)
# Hashing a few MiB takes milliseconds: larger uploads are hashed on the CPU pool.
_HASH_ON_LOOP_BYTES = 1024 * 1024
# Above this a request gains nothing: the served model returns at most K (1024) candidates.
# Job work waits out an inference outage (or a loading model) with this capped backoff.
_WAIT_FIRST_SECONDS = 0.25
_WAIT_MAX_SECONDS = 5.0
# Whose usage an answered image counts as (ADR 0030): a waiting caller's, or job work's.
_USAGE_SOURCE = {Lane.INTERACTIVE: SOURCE_CALLS, Lane.BACKGROUND: SOURCE_JOBS}


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


class Detector:
    def __init__(
        self,
        *,
        batchers: ModelBatchers,
        catalog: ModelCatalog,
        executor: Executor,
        annotator: SandboxedAnnotator,
        class_names: Sequence[str],
        limits: imaging.ImageLimits,
        defaults: DetectionOptions,
        inference_timeout_s: float,
        cache: ResultCache | None = None,
        outcomes: Counter | None = None,
        tiles_cut: Counter | None = None,
        monitor: ModelMonitor | None = None,
        usage: "UsageMeter | None" = None,
        require_verified_email: bool = False,
    ) -> None:
        """``class_names``: the default model's, for history filters (stored rows keep their
        own names); each request's classes are checked against the model it names.
        ``usage``: meters every answered image and checks quotas (the full service's; the
        realtime role, which serves internal callers only, meters nothing).
        ``require_verified_email``: `admit` refuses accounts whose address is unverified.
        ``monitor``: told the objects of every fresh detection (ADR 0057)."""
        self._batchers = batchers
        self._require_verified_email = require_verified_email
        self._usage = usage
        self._catalog = catalog
        self._outcomes = outcomes
        self._tiles_cut = tiles_cut
        self._monitor = monitor
        self._cache = cache
        self._executor = executor
        self._annotator = annotator
        self.class_names = tuple(class_names)
        self._class_ids = {name.lower(): i for i, name in enumerate(self.class_names)}
        self.limits = limits
        self.defaults = defaults
        self._inference_timeout = inference_timeout_s

    async def resolve(self, name: str | None) -> ServedModel:
        """The ready model a request names (empty: the default); NotFound listing the known
        ones, or Unavailable while it is loading."""
        return await self._catalog.resolve(name)

    async def models(self) -> list[ServedModel]:
        return await self._catalog.list_models()

    @property
    def default_model(self) -> str:
        return self._catalog.default_model

    def class_id(self, value: str, model: ServedModel | None = None) -> int:
        """A class given by name (any case) or numeric id; InvalidArgument if the model lacks it."""
        names = (
            model.description.classes
            if model is not None and model.description.classes
            else self.class_names
        )
        ids = (
            {name.lower(): i for i, name in enumerate(names)}
            if names is not self.class_names
            else self._class_ids
        )
        text = value.strip()
        if text.isascii() and text.isdigit() and int(text) < len(names):
            return int(text)
        if text.lower() in ids:
            return ids[text.lower()]
        which = f"model {model.name!r}" if model is not None else "the model"
        raise InvalidArgument(f"unknown class {value!r}; {which} knows: {', '.join(names)}")

    def options(
        self,
        *,
        confidence: float = 0.0,
        iou: float = 0.0,
        classes: Iterable[str] = (),
        max_detections: int = 0,
        model: ServedModel | None = None,
        class_confidence: Mapping[str, float] | None = None,
        tile_size: int = 0,
        tile_overlap: float = 0.0,
        regions: Iterable[Sequence[tuple[float, float]]] = (),
    ) -> DetectionOptions:
        """A request's parameters with zeros replaced by the service defaults, validated.
        `class_confidence`: minimum scores of chosen classes (names or ids), each above 0 and
        at most 1, in place of `confidence` for those classes (ADR 0050). `tile_size`: also
        detect in overlapping tiles of this side (ADR 0051), `tile_overlap` of it shared.
        `regions`: keep only objects standing in these polygons (ADR 0053)."""
        for name, value in (("confidence", confidence), ("iou", iou)):
            if math.isnan(value) or not 0.0 <= value <= 1.0:
                raise InvalidArgument(f"{name} must be between 0 and 1 (0 = default)")
        per_class: dict[int, float] = {}
        for name, value in (class_confidence or {}).items():
            if math.isnan(value) or not 0.0 < value <= 1.0:
                raise InvalidArgument(
                    f"the confidence of class {name!r} must be above 0 and at most 1"
                )
            per_class[self.class_id(name, model)] = float(value)
        if len(per_class) > MAX_CLASS_CONFIDENCES:
            raise InvalidArgument(
                f"at most {MAX_CLASS_CONFIDENCES} classes can have their own confidence"
            )
        if not 0 <= max_detections <= MAX_DETECTIONS_LIMIT:
            raise InvalidArgument(
                f"max_detections must be between 0 and {MAX_DETECTIONS_LIMIT} (0 = default)"
            )
        self._check_tiling(tile_size, tile_overlap)
        wanted = [c for c in classes if c.strip()]
        return DetectionOptions(
            confidence=confidence or self.defaults.confidence,
            iou=iou or self.defaults.iou,
            max_detections=max_detections or self.defaults.max_detections,
            class_ids=frozenset(self.class_id(c, model) for c in wanted) if wanted else None,
            class_confidence=tuple(sorted(per_class.items())),
            tile_size=tile_size,
            tile_overlap=(tile_overlap or DEFAULT_TILE_OVERLAP) if tile_size else 0.0,
            regions=interest.checked_regions(regions),
        )

    @staticmethod
    def _check_tiling(tile_size: int, tile_overlap: float) -> None:
        if tile_size and not MIN_TILE_SIZE <= tile_size <= MAX_TILE_SIZE:
            raise InvalidArgument(
                f"tile_size must be between {MIN_TILE_SIZE} and {MAX_TILE_SIZE} pixels"
                " (0 = no tiles)"
            )
        if math.isnan(tile_overlap) or not 0.0 <= tile_overlap <= MAX_TILE_OVERLAP:
            raise InvalidArgument(
                f"tile_overlap must be above 0 and at most {MAX_TILE_OVERLAP}"
                f" (0 = the default {DEFAULT_TILE_OVERLAP})"
            )
        if tile_overlap and not tile_size:
            raise InvalidArgument("tile_overlap needs a tile_size: without one nothing is tiled")

    def _tiles(self, header: ImageHeader, options: DetectionOptions) -> int:
        """How many tiles the image is cut into (0: not tiled, as it fits in one); refuses an
        image that would need more than MAX_TILES_PER_IMAGE before any work is done."""
        if not options.tile_size:
            return 0
        count = tiling.tile_count(
            header.width, header.height, options.tile_size, options.tile_overlap
        )
        if count > MAX_TILES_PER_IMAGE:
            raise InvalidArgument(
                f"tile_size {options.tile_size} cuts this {header.width}x{header.height} image"
                f" into {count} tiles; at most {MAX_TILES_PER_IMAGE} are detected per image:"
                " choose a larger tile_size or a smaller tile_overlap"
            )
        # Overlapping tiles repeat pixels; together they may hold twice an upload's most.
        pixels = tiling.tiled_pixels(
            header.width, header.height, options.tile_size, options.tile_overlap
        )
        if count > 1 and pixels > 2 * self.limits.max_pixels:
            raise InvalidArgument(
                f"the tiles of this {header.width}x{header.height} image would hold {pixels}"
                f" pixels; at most {2 * self.limits.max_pixels} (twice an image's most) are"
                " detected: choose a smaller tile_overlap or a larger tile_size"
            )
        return count if count > 1 else 0

    async def admit(
        self,
        principal: common_pb2.Principal,
        *,
        images: int,
        job: bool = False,
        session: "AsyncSession | None" = None,
    ) -> None:
        """Raise EmailNotVerified when the deployment requires a verified address and the
        caller's credential has none, and QuotaExceeded unless `images` more fit in the
        user's monthly quota beside what its unfinished jobs hold (`job`: a job's
        submission, which reads both afresh); called once for the work a request brings (a
        Detect's images, a job's items), before any of it is done, so a request is refused
        whole rather than half done."""
        self.require_verified(principal)
        if self._usage is not None:
            await self._usage.admit(principal.user_id, images, job=job, session=session)

    def require_verified(self, principal: common_pb2.Principal) -> None:
        """Raise EmailNotVerified when the deployment requires a verified email address and
        the caller's credential has none; a stream checks this once, before its frames."""
        if self._require_verified_email and not principal.email_verified:
            raise EmailNotVerified(
                "this service detects objects for verified email addresses only: open the"
                " link we emailed you (or ask for a new one), then sign in again"
            )

    def inspect(self, data: bytes) -> ImageHeader:
        """Refuse an unfit upload from its header alone (no decoding): safe on the event loop."""
        return imaging.inspect(data, self.limits)

    async def annotate(
        self,
        data: bytes,
        objects: Sequence[DetectedObject],
        rendering: Rendering = BOXES,
    ) -> bytes:
        """The image as JPEG at its original size with the objects drawn on it (or as
        `rendering` says: no boxes, classes pixelated), decoded and drawn in a confined child
        (ADR 0043) once its header passed here."""
        self.inspect(data)
        return await self._annotator.annotate(data, objects, rendering)

    def redacted_classes(self, values: Iterable[str]) -> frozenset[str]:
        """The classes (names or ids, any case) whose objects a rendering pixelates, as the
        lower-case names objects carry; InvalidArgument naming an unknown one, or for more than
        MAX_REDACTED_CLASSES."""
        wanted = [value for value in values if value.strip()]
        if len(wanted) > MAX_REDACTED_CLASSES:
            raise InvalidArgument(f"at most {MAX_REDACTED_CLASSES} classes can be redacted")
        return frozenset(self.class_names[self.class_id(value)].lower() for value in wanted)

    def _refusal(self, result: contract.ImageResult, header: ImageHeader) -> DomainError:
        """The domain error for an image the model's decoder refused."""
        if result.status == contract.STATUS_TOO_LARGE:
            return PayloadTooLarge(
                f"the image decodes to more than {self.limits.max_pixels} pixels, the most accepted"
            )
        if result.status == contract.STATUS_SIZE_MISMATCH:
            return InvalidArgument(
                f"the {header.format.name} header says {header.width}x{header.height} but the"
                f" image decodes to {result.width}x{result.height}: a malformed file"
            )
        return InvalidArgument(f"the {header.format.name} image is corrupt and cannot be decoded")

    def _objects(self, rows: np.ndarray, names: Sequence[str]) -> list[DetectedObject]:
        objects = []
        for x1, y1, x2, y2, score, class_value in rows.tolist():
            class_id = int(class_value)
            known = 0 <= class_id < len(names)
            name = names[class_id] if known else str(class_id)
            objects.append(DetectedObject(class_id, name, float(score), x1, y1, x2, y2))
        return objects

    async def detect(
        self,
        data: bytes,
        options: DetectionOptions,
        *,
        user_id: str,
        model: ServedModel | None = None,
        time_limit_s: float | None = None,
        header: ImageHeader | None = None,
        lane: Lane = Lane.INTERACTIVE,
    ) -> DetectionResult:
        """Objects in one of ``user_id``'s images by ``model`` (None: the default); raises the
        domain error of an unfit image, NotFound for an unknown model, or Unavailable
        (TooManyWaiting when this user already has too many images waiting).

        ``header``: what `inspect` already read from these bytes (an accepted Upload's), so
        the header is not parsed twice; None to check it here. ``lane``: the micro-batcher's
        line the image waits in (job work passes BACKGROUND); users take turns in it."""
        try:
            served = model if model is not None else await self.resolve(None)
            result = await self._detect(
                data,
                options,
                served,
                user_id=user_id,
                time_limit_s=time_limit_s,
                header=header,
                lane=lane,
            )
        except Unavailable:
            self._count("unavailable")
            raise
        except DomainError:
            self._count("refused")
            raise
        self._count("cached" if result.cached else "detected")
        if self._monitor is not None and not result.cached:
            self._monitor.observe(served.name, result.objects)
        if self._usage is not None:
            self._usage.record(user_id, _USAGE_SOURCE[lane])
        return result

    async def detect_when_available(
        self,
        data: bytes,
        options: DetectionOptions,
        *,
        user_id: str,
        model: str | None,
        on_first_wait: Callable[[], None] | None = None,
    ) -> DetectionResult:
        """`detect` for job work (batch items, video frames), which waits in the batcher's
        background lane and outlives an outage: the model is resolved per attempt, and
        Unavailable (Triton away, the model loading) is waited out with a capped exponential
        backoff instead of failing the work. Other domain errors are raised: the image's, or
        NotFound for a model removed from the repository. ``on_first_wait`` runs once, before
        the first wait, so the caller can say what is waiting."""
        delay = _WAIT_FIRST_SECONDS
        while True:
            try:
                served = await self.resolve(model)
                return await self.detect(
                    data, options, user_id=user_id, model=served, lane=Lane.BACKGROUND
                )
            except Unavailable:
                if delay == _WAIT_FIRST_SECONDS and on_first_wait is not None:
                    on_first_wait()
                await asyncio.sleep(delay)
                delay = min(delay * 2, _WAIT_MAX_SECONDS)

    def _count(self, outcome: str) -> None:
        if self._outcomes is not None:
            self._outcomes.labels(outcome).inc()

    async def _detect(
        self,
        data: bytes,
        options: DetectionOptions,
        model: ServedModel,
        *,
        user_id: str,
        time_limit_s: float | None,
        header: ImageHeader | None,
        lane: Lane,
    ) -> DetectionResult:
        started = time.perf_counter()
        names = model.description.classes or self.class_names
        with _TRACER.start_as_current_span("detect image") as span:
            span.set_attribute("objectvision.model", model.name)
            span.set_attribute("objectvision.lane", lane.value)
            span.set_attribute("objectvision.model_version", model.version)
            span.set_attribute("objectvision.image.bytes", len(data))
            if header is None:
                header = self.inspect(data)
            tiles = self._tiles(header, options)
            span.set_attribute("objectvision.image.format", header.format.value)
            span.set_attribute("objectvision.image.width", header.width)
            span.set_attribute("objectvision.image.height", header.height)
            key = await self._cache_key(data, options, model)
            if key is not None and self._cache is not None:
                found = await self._cache.get(key)
                if found is not None:
                    span.set_attribute("objectvision.cached", True)
                    span.set_attribute("objectvision.detections", len(found.objects))
                    timings = Timings(0.0, 0.0, 0.0, 0.0, _ms(started))
                    return DetectionResult(
                        found.width,
                        found.height,
                        found.objects,
                        timings,
                        cached=True,
                        model=model.name,
                        model_version=model.version,
                    )
            budget = self._inference_timeout
            if time_limit_s is not None:
                budget = min(budget, time_limit_s)
            ask = _Asking(model.name, user_id, len(names), budget, lane)
            if tiles:
                span.set_attribute("objectvision.tiles", tiles)
                outcome, rows = await self._infer_tiled(data, header, options, ask)
            else:
                outcome = await self._infer(data, header, options, ask)
                rows = outcome.result.rows
            result = outcome.result
            decode_ms, _, nms_ms = result.stage_ms
            timings = Timings(
                decode_ms=decode_ms,
                queue_ms=outcome.queue_ms,
                inference_ms=outcome.inference_ms,
                postprocess_ms=nms_ms,
                total_ms=_ms(started),
            )
            span.set_attribute("objectvision.batch_size", outcome.batch_size)
            span.set_attribute("objectvision.queue_ms", round(outcome.queue_ms, 3))
            span.set_attribute("objectvision.inference_ms", round(outcome.inference_ms, 3))
            span.set_attribute("objectvision.detections", len(rows))
            objects = self._objects(rows, names)
            if options.class_confidence:
                # Triton kept every object above the lowest minimum; each class's own is here.
                objects = [obj for obj in objects if options.keeps(obj.class_id, obj.confidence)]
            if options.regions:
                objects = interest.standing_in(
                    objects, options.regions, result.width, result.height
                )
            if key is not None and self._cache is not None:
                await self._cache.put(key, CachedAnswer(result.width, result.height, objects))
            return DetectionResult(
                result.width,
                result.height,
                objects,
                timings,
                model=model.name,
                model_version=model.version,
            )

    async def _infer(
        self, data: bytes, header: ImageHeader, options: DetectionOptions, ask: "_Asking"
    ) -> InferenceOutcome:
        """One image (an upload or a tile) through the micro-batcher; the domain error of an
        image the model's decoder refused."""
        outcome = await self._batchers.infer(
            ask.model,
            ImageRequest.of(data, header, options),
            user_id=ask.user_id,
            class_count=ask.class_count,
            time_limit_s=ask.time_limit_s,
            lane=ask.lane,
        )
        if outcome.result.status != contract.STATUS_OK:
            raise self._refusal(outcome.result, header)
        return outcome

    async def _infer_tiled(
        self, data: bytes, header: ImageHeader, options: DetectionOptions, ask: "_Asking"
    ) -> tuple[InferenceOutcome, np.ndarray]:
        """The whole image and its tiles (cut in a confined child while the whole image is
        already waiting), every one an image of the batch like any other, and their objects
        merged (tiling.merge, off the event loop). The outcome is the whole image's, with the
        longest wait and inference of all."""
        waiting = [asyncio.ensure_future(self._infer(data, header, options, ask))]
        try:
            tiles = await self._annotator.cut_tiles(data, options.tile_size, options.tile_overlap)
            if options.regions:
                tiles = _near_regions(tiles, options.regions)
            if self._tiles_cut is not None:
                self._tiles_cut.inc(len(tiles))
            for tile in tiles:
                asked = self._infer(tile.png, self.inspect(tile.png), options, ask)
                waiting.append(asyncio.ensure_future(asked))
            outcomes = await asyncio.gather(*waiting)
        finally:
            for pending in waiting:
                pending.cancel()
        whole, parts = outcomes[0], outcomes[1:]
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(
            self._executor,
            tiling.merge,
            whole.result.rows,
            [(tile, part.result.rows) for tile, part in zip(tiles, parts, strict=True)],
            (whole.result.width, whole.result.height),
            options.max_detections,
        )
        outcome = InferenceOutcome(
            result=whole.result,
            queue_ms=max(part.queue_ms for part in outcomes),
            inference_ms=max(part.inference_ms for part in outcomes),
            batch_size=whole.batch_size,
        )
        return outcome, rows

    async def forget(self, data: bytes) -> None:
        """Drop the result cache's answers for these bytes (a deleted image's), whatever
        model, version or options they were computed with; nothing without a cache."""
        if self._cache is None:
            return
        if len(data) < _HASH_ON_LOOP_BYTES:
            digest = image_digest(data)
        else:
            loop = asyncio.get_running_loop()
            digest = await loop.run_in_executor(self._executor, image_digest, data)
        await self._cache.forget(digest)

    async def _cache_key(
        self, data: bytes, options: DetectionOptions, model: ServedModel
    ) -> str | None:
        """None without a cache or while the model's version is unknown (never guess it):
        the key holds the model's name and the version Triton serves, so another model or a
        new version never answers from an old entry."""
        if self._cache is None or not model.version:
            return None
        name, version = model.name, model.version
        if len(data) < _HASH_ON_LOOP_BYTES:
            return content_key(data, model=name, version=version, options=options)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor,
            lambda: content_key(data, model=name, version=version, options=options),
        )


def _near_regions(
    tiles: Sequence[tiling.Tile], regions: Sequence[interest.Polygon]
) -> list[tiling.Tile]:
    """The tiles that overlap the regions' bounds (ADR 0053): an object standing in a region
    lies whole only in those, so the others need no inference."""
    width = max(tile.x + tile.width for tile in tiles)
    height = max(tile.y + tile.height for tile in tiles)
    left, top, right, bottom = interest.bounds(regions, width, height)
    return [
        tile
        for tile in tiles
        if tile.x <= right
        and left <= tile.x + tile.width
        and tile.y <= bottom
        and top <= tile.y + tile.height
    ]


@dataclass(frozen=True)
class _Asking:
    """How one request's images (the upload, its tiles) are put to the micro-batcher."""

    model: str
    user_id: str
    class_count: int
    time_limit_s: float
    lane: Lane
