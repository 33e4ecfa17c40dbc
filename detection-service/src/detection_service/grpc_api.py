"""The DetectionService servicer: read the caller and the request, call the domain, shape replies.

The realtime RPCs (ListModels, Detect, DetectStream) are realtime.servicer's; this adds what
is kept. Every RPC is scoped to the principal the gateway signed; another user's ids are
NotFound. Uploads are refused from their headers before anything is decoded or stored.
"""

import asyncio
import dataclasses
import math
import shutil
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime

from google.protobuf.empty_pb2 import Empty
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.evaluation import service as evaluation
from detection_service.evaluation.scoring import CurvePoint
from detection_service.evaluation.tracking import TrackingScores
from detection_service.exports import formats as export_formats
from detection_service.exports import service as exports
from detection_service.history import service as history
from detection_service.history.service import DetectionRecord, HistoryFilter
from detection_service.images import service as stored_images
from detection_service.images.storage import CHUNK_BYTES, ObjectNotFoundError, ObjectStorage
from detection_service.images.uploads import JobUpload, Upload, sanitize_filename
from detection_service.jobs import models as job_models
from detection_service.jobs import reruns
from detection_service.jobs import service as jobs
from detection_service.jobs.queue import JobQueue
from detection_service.pipeline.annotate import Rendering
from detection_service.pipeline.catalog import ServedModel
from detection_service.pipeline.detector import Detector
from detection_service.pipeline.types import (
    DetectedObject,
    DetectionOptions,
    DetectionResult,
    Timings,
)
from detection_service.realtime.servicer import KeptDetect, RealtimeServicer, objects_reply
from detection_service.retention import service as retention
from detection_service.retention.service import MAX_RETENTION_DAYS
from detection_service.sandbox.limits import SandboxLimits
from detection_service.sharing import service as sharing
from detection_service.sharing.service import ShareLinkRecord
from detection_service.tracking.lines import checked_lines
from detection_service.tracking.messages import (
    counting_lines,
    counting_lines_reply,
    counting_zones,
    counting_zones_reply,
    crossings_reply,
    line_counts_reply,
    zone_counts_reply,
)
from detection_service.tracking.tracker import TrackingSettings
from detection_service.tracking.zones import checked_zones
from detection_service.usage.meter import Standing, UsageMeter
from detection_service.usage.service import DayOfUsage
from detection_service.video import intake as video_intake
from detection_service.video import service as video_jobs
from detection_service.video.probe import VideoLimits, sampling_from
from detection_service.video.views import VideoView
from detection_service.video.worker import ANNOTATED_CONTENT_TYPE
from objectvision.v1 import common_pb2, detection_pb2
from objectvision_common.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unavailable,
)
from objectvision_common.limits import (
    DEFAULT_PAGE_LIMIT,
    MAX_LABELS_BYTES,
    MAX_PAGE_LIMIT,
    checked_confidence_below,
    checked_filename_filter,
    checked_idempotency_key,
    checked_metadata,
    page_bounds,
)
from objectvision_common.servicer import ServicerContext

# Frames per ListVideoFrames page: at most (and by default) this many.
MAX_VIDEO_FRAMES_PAGE = 1000
# Days of usage GetUsage lists: by default a month's worth, at most a year's.
DEFAULT_USAGE_DAYS = 31
MAX_USAGE_DAYS = 366

_JOB_STATUS = {
    job_models.PENDING: detection_pb2.JOB_STATUS_PENDING,
    job_models.PROCESSING: detection_pb2.JOB_STATUS_PROCESSING,
    job_models.COMPLETED: detection_pb2.JOB_STATUS_COMPLETED,
    job_models.FAILED: detection_pb2.JOB_STATUS_FAILED,
    job_models.CANCELLED: detection_pb2.JOB_STATUS_CANCELLED,
}
_JOB_STATUS_NAMES = {number: name for name, number in _JOB_STATUS.items()}
_JOB_KINDS = (job_models.KIND_BATCH, job_models.KIND_VIDEO)
_DETECTION_STATUS = {"completed": detection_pb2.DETECTION_STATUS_COMPLETED}
_EXPORT_FORMATS = {
    detection_pb2.EXPORT_FORMAT_COCO: "coco",
    detection_pb2.EXPORT_FORMAT_YOLO: "yolo",
    detection_pb2.EXPORT_FORMAT_CSV: "csv",
}


def _curve(points: Sequence[CurvePoint]) -> list[detection_pb2.CurvePoint]:
    return [
        detection_pb2.CurvePoint(
            confidence=point.confidence,
            precision=point.precision,
            recall=point.recall,
            f1=point.f1,
        )
        for point in points
    ]


def _evaluation_reply(
    evaluated: evaluation.JobEvaluation, model_classes: Sequence[str]
) -> detection_pb2.JobEvaluation:
    scores = evaluated.scores
    return detection_pb2.JobEvaluation(
        job_id=str(evaluated.job_id),
        model=evaluated.model,
        labels_format=evaluated.labels_format,
        min_confidence=evaluated.min_confidence,
        images=evaluated.images,
        images_without_labels=evaluated.images_without_labels,
        unmatched_labels=evaluated.unmatched_labels,
        unmatched_label_count=evaluated.unmatched_label_count,
        unknown_classes=evaluated.unknown_classes,
        ground_truth=scores.ground_truth,
        detections=scores.detections,
        map50_95=scores.map50_95,
        map50=scores.map50,
        map75=scores.map75,
        precision=scores.precision,
        recall=scores.recall,
        f1=scores.best.f1 if scores.best else None,
        f1_confidence=scores.best.confidence if scores.best else None,
        # Rounded down, so that the detections it was reached with still pass it.
        suggested_class_confidence={
            row.class_name: math.floor(row.best.confidence * 10_000) / 10_000
            for row in scores.classes
            if row.best
        },
        classes=[
            detection_pb2.ClassEvaluation(
                class_id=row.class_id,
                class_name=row.class_name,
                ground_truth=row.ground_truth,
                detections=row.detections,
                ap50_95=row.ap50_95,
                ap50=row.ap50,
                precision=row.precision,
                recall=row.recall,
                f1=row.best.f1 if row.best else None,
                f1_confidence=row.best.confidence if row.best else None,
                curve=_curve(row.curve),
                tracking=_tracking(
                    evaluated.tracking.classes.get(row.class_id) if evaluated.tracking else None
                ),
            )
            for row in scores.classes
        ],
        curve=_curve(scores.curve),
        sizes=[
            detection_pb2.SizeEvaluation(
                size=row.size, ground_truth=row.ground_truth, map50_95=row.map50_95
            )
            for row in scores.sizes
        ],
        confusions=[
            detection_pb2.Confusion(
                actual="" if cell.actual is None else model_classes[cell.actual],
                predicted="" if cell.predicted is None else model_classes[cell.predicted],
                count=cell.count,
            )
            for cell in scores.confusions
        ],
        job_kind=evaluated.job_kind,
        frames_outside_labels=evaluated.frames_outside_labels,
        tracking=_tracking(evaluated.tracking.overall if evaluated.tracking else None),
    )


def _tracking(scores: TrackingScores | None) -> detection_pb2.TrackingEvaluation | None:
    if scores is None:
        return None
    return detection_pb2.TrackingEvaluation(
        mota=scores.mota,
        motp=scores.motp,
        idf1=scores.idf1,
        id_precision=scores.id_precision,
        id_recall=scores.id_recall,
        id_switches=scores.id_switches,
        fragmentations=scores.fragmentations,
        ground_truth_tracks=scores.ground_truth_tracks,
        mostly_tracked=scores.mostly_tracked,
        partially_tracked=scores.partially_tracked,
        mostly_lost=scores.mostly_lost,
        false_positives=scores.false_positives,
        misses=scores.misses,
    )


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{what} is not a valid id") from None


def _job_filter(request: detection_pb2.ListJobsRequest) -> tuple[str | None, str | None]:
    """ListJobs' (status, kind) filters; None where the request leaves one open."""
    status = None
    if request.status != detection_pb2.JOB_STATUS_UNSPECIFIED:
        status = _JOB_STATUS_NAMES.get(request.status)
        if status is None:
            raise InvalidArgument(f"unknown job status {request.status}")
    kind = request.kind.strip() or None
    if kind is not None and kind not in _JOB_KINDS:
        raise InvalidArgument(f"unknown job kind {kind!r}; choose one of: {', '.join(_JOB_KINDS)}")
    return status, kind


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _detection(record: DetectionRecord) -> detection_pb2.Detection:
    known = set(Timings.__dataclass_fields__)
    return detection_pb2.Detection(
        id=str(record.id),
        status=_DETECTION_STATUS.get(record.status, detection_pb2.DETECTION_STATUS_UNSPECIFIED),
        job_id=str(record.job_id) if record.job_id else "",
        result=detection_pb2.ImageResult(
            detection_id=str(record.id),
            width=record.width,
            height=record.height,
            objects=objects_reply(record.objects),
            timings=detection_pb2.Timings(
                **{k: v for k, v in record.timings.items() if k in known}
            ),
            filename=record.filename,
            model=record.model,
            model_version=record.model_version,
        ),
        created_at=_timestamp(record.created_at),
        updated_at=_timestamp(record.updated_at),
        metadata=record.metadata,
    )


def _job(view: jobs.JobView) -> detection_pb2.Job:
    job = detection_pb2.Job(
        id=str(view.id),
        status=_JOB_STATUS[view.status],
        total=view.total,
        processed=view.processed,
        failed=view.failed,
        items=[
            detection_pb2.JobItem(
                filename=item.filename,
                status=_JOB_STATUS[item.status],
                detection_id=str(item.detection_id) if item.detection_id else "",
                error=item.error or "",
                object_count=item.object_count,
            )
            for item in view.items
        ],
        created_at=_timestamp(view.created_at),
        updated_at=_timestamp(view.updated_at),
        model=view.model,
        model_version=view.model_version,
        metadata=view.metadata,
        rerun_of=str(view.rerun_of) if view.rerun_of else "",
    )
    if view.class_counts is not None:
        # Present even when empty: a job that ended having found nothing says so.
        job.class_counts.SetInParent()
        job.class_counts.counts.update(view.class_counts)
    if view.completed_at is not None:
        job.completed_at.CopyFrom(_timestamp(view.completed_at))
    if view.estimate is not None:
        job.items_per_second = view.estimate.items_per_second
        job.estimated_completion_at.CopyFrom(_timestamp(view.estimate.completion_at))
    if view.video is not None:
        job.kind = view.kind
        job.error = view.error or ""
        job.video.CopyFrom(_video_info(view.video))
    return job


def _video_info(video: VideoView) -> detection_pb2.VideoInfo:
    probe = video.probe
    return detection_pb2.VideoInfo(
        filename=video.filename,
        **probe.file_fields(),
        sampling=detection_pb2.VideoSampling(
            fps=video.sampling.fps or 0.0, every=video.sampling.every or 0
        ),
        sampled_frames=probe.sampled_frames,
        size_bytes=video.size_bytes,
        annotated_available=video.annotated_available,
        tracked=video.tracked,
        lines=counting_lines_reply(video.lines),
        line_counts=line_counts_reply(video.line_counts),
        zones=counting_zones_reply(video.zones),
        zone_counts=zone_counts_reply(video.zone_counts),
        redact=video.redact,
    )


def _usage(user_id: str, standing: Standing, days: Sequence[DayOfUsage]) -> detection_pb2.Usage:
    return detection_pb2.Usage(
        user_id=user_id,
        month_start=standing.month_start.isoformat(),
        renews_on=standing.renews.isoformat(),
        month_images=standing.used,
        monthly_quota=standing.quota,
        remaining=standing.remaining,
        custom_quota=standing.custom_quota,
        held_images=standing.held,
        days=[
            detection_pb2.UsageDay(date=day.day.isoformat(), calls=day.calls, jobs=day.jobs)
            for day in days
        ],
    )


def _share_link(link: ShareLinkRecord, now: datetime) -> detection_pb2.ShareLink:
    reply = detection_pb2.ShareLink(
        id=str(link.id),
        detection_id=str(link.detection_id) if link.detection_id is not None else "",
        job_id=str(link.job_id) if link.job_id is not None else "",
        created_at=_timestamp(link.created_at),
        expires_at=_timestamp(link.expires_at),
        active=link.active(now),
        views=link.views,
        token_prefix=link.token_prefix,
        redact=link.redact,
    )
    if link.revoked_at is not None:
        reply.revoked_at.CopyFrom(_timestamp(link.revoked_at))
    if link.last_viewed_at is not None:
        reply.last_viewed_at.CopyFrom(_timestamp(link.last_viewed_at))
    return reply


def _shared_video(shared: sharing.SharedVideoView) -> detection_pb2.SharedVideo:
    """A shared video job as its link shows it: the job's answer less what stays its
    owner's (its id, file name, metadata, items)."""
    job = _job(shared.job)
    video = detection_pb2.VideoInfo()
    video.CopyFrom(job.video)
    video.filename = ""
    return detection_pb2.SharedVideo(
        video=video,
        class_counts=job.class_counts.counts,
        model=job.model,
        model_version=job.model_version,
        completed_at=job.completed_at,
        expires_at=_timestamp(shared.expires_at),
    )


def _video_frame(frame: video_jobs.FrameRecord) -> detection_pb2.VideoFrame:
    return detection_pb2.VideoFrame(
        frame_index=frame.frame_index,
        timestamp_seconds=frame.timestamp_seconds,
        objects=objects_reply(frame.objects),
        error=frame.error or "",
        crossings=crossings_reply(frame.crossings),
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class HistoryStore:
    """Where the full service keeps a stored Detect: the history (DetectionStore)."""

    sessions: async_sessionmaker[AsyncSession]
    storage: ObjectStorage

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
    ) -> KeptDetect:
        try:
            ids = await history.store_detections(
                sessions=self.sessions,
                storage=self.storage,
                user_id=user_id,
                uploads=uploads,
                outcomes=outcomes,
                options=options,
                now=now,
                metadata=metadata,
                idempotency_key=idempotency_key,
            )
        except history.KeyAlreadyUsed:
            earlier = await self.replay(user_id=user_id, idempotency_key=idempotency_key)
            if earlier is None:
                # The request that stored first was deleted in the meantime: nothing to
                # answer with, and this one was not stored.
                raise FailedPrecondition(
                    f"idempotency key {idempotency_key!r} was used at the same moment by a"
                    " request whose detections are gone; retry with a new key"
                ) from None
            return KeptDetect(replayed=earlier)
        return KeptDetect(ids=ids)

    async def replay(
        self, *, user_id: str, idempotency_key: str
    ) -> list[detection_pb2.ImageResult] | None:
        async with self.sessions() as session:
            records = await history.detections_of_request(
                session=session, user_id=user_id, idempotency_key=idempotency_key
            )
        return [_detection(record).result for record in records] or None


class DetectionServicer(RealtimeServicer):
    """The realtime RPCs with a store for Detect, and everything kept: history, annotated
    images, exports, batch and video jobs, and deleting what was kept."""

    def __init__(
        self,
        *,
        detector: Detector,
        sessions: async_sessionmaker[AsyncSession],
        storage: ObjectStorage,
        queue: JobQueue,
        service_secret: str,
        max_batch_files: int,
        stream_max_in_flight: int,
        tracking: TrackingSettings,
        executor: Executor | None = None,
        usage: UsageMeter,
        video_limits: VideoLimits | None = None,
        video_sandbox: SandboxLimits | None = None,
        video_default_fps: float = 1.0,
        retention_days: int = 0,
        max_unfinished_jobs: int = 0,
    ) -> None:
        super().__init__(
            detector=detector,
            service_secret=service_secret,
            max_batch_files=max_batch_files,
            stream_max_in_flight=stream_max_in_flight,
            tracking=tracking,
            store=HistoryStore(sessions=sessions, storage=storage),
        )
        # Video jobs (ADR 0016): probed by a sandboxed child (ADR 0040) waited on in the CPU
        # pool, refused beyond these limits.
        self._executor = executor
        # Unfinished jobs one account may have (ADR 0044); 0: no limit.
        self._max_unfinished_jobs = max_unfinished_jobs
        self._video_limits = video_limits
        self._video_sandbox = video_sandbox
        self._video_default_fps = video_default_fps
        self._sessions = sessions
        self._storage = storage
        self._queue = queue
        self._usage = usage
        # RETENTION_DAYS: the period of every account an admin set none for (ADR 0031).
        self._retention_days = retention_days
        # Evaluations score in a worker thread holding the GIL for much of its time (ADR
        # 0054): one at a time per process, so they never take more than one core's share
        # from serving; the next waits its turn.
        self._scoring = asyncio.Semaphore(1)

    def _class_filter(self, value: str) -> int | None:
        """A history filter's class (name or id) as an id; None when not filtered."""
        value = value.strip()
        return self._detector.class_id(value) if value else None

    def _history_filter(
        self,
        request: detection_pb2.ListDetectionsRequest
        | detection_pb2.ExportDetectionsRequest
        | detection_pb2.SummarizeDetectionsRequest
        | detection_pb2.DeleteDetectionsRequest
        | detection_pb2.RerunHistoryRequest,
    ) -> HistoryFilter:
        """A history request's filters, resolved: the class as its id, [since, until) with
        either end open when not given, the metadata and the file-name search checked."""
        return HistoryFilter(
            class_id=self._class_filter(request.class_filter),
            since=request.since.ToDatetime(tzinfo=UTC) if request.HasField("since") else None,
            until=request.until.ToDatetime(tzinfo=UTC) if request.HasField("until") else None,
            metadata=checked_metadata(request.metadata),
            filename_contains=checked_filename_filter(request.filename_contains),
            confidence_below=(
                checked_confidence_below(request.confidence_below)
                if request.HasField("confidence_below")
                else None
            ),
        )

    def _screen(
        self,
        images: Sequence[detection_pb2.ImageInput],
        refused_by_caller: Sequence[detection_pb2.RefusedImage],
    ) -> tuple[list[tuple[int, Upload]], list[jobs.Refusal]]:
        """A batch's usable images at their positions and the refused files with reasons.

        Users of batch APIs expect per-file results: a file refused from its header fails its
        own item, and the request fails only when no file is usable (with the error every
        file shares, or InvalidArgument listing each file's reason).
        """
        total = len(images) + len(refused_by_caller)
        if not total:
            raise InvalidArgument("send at least one image")
        if total > self._max_batch_files:
            raise InvalidArgument(
                f"{total} images sent; at most {self._max_batch_files} per request: split the"
                " folder into several jobs"
            )
        accepted: list[tuple[int, Upload]] = []
        refused: list[jobs.Refusal] = []
        errors: list[DomainError] = []
        for position, image in enumerate(images):
            name = sanitize_filename(image.filename)
            try:
                header = self._detector.inspect(image.data)
            except DomainError as error:
                refused.append(jobs.Refusal(position, name or f"#{position + 1}", error.message))
                errors.append(error)
                continue
            accepted.append((position, Upload(image.data, name, header)))
        for offset, item in enumerate(refused_by_caller):
            position = len(images) + offset
            name = sanitize_filename(item.filename) or f"#{position + 1}"
            refused.append(jobs.Refusal(position, name, item.reason[:500] or "refused"))
            errors.append(InvalidArgument(item.reason))
        if not accepted:
            reasons = "; ".join(f"{r.filename}: {r.reason}" for r in refused)
            kinds = {type(error) for error in errors}
            kind = kinds.pop() if len(kinds) == 1 else InvalidArgument
            raise kind(f"no usable image in the batch ({reasons})")
        return accepted, refused

    async def _ensure_room_for_a_job(self, user_id: str) -> None:
        """Refuse a new job of an account at its limit of unfinished ones before its uploads
        are read or stored; the transaction that adds the job checks again, exactly."""
        async with self._sessions() as session:
            await jobs.ensure_room_for_a_job(
                session=session, user_id=user_id, limit=self._max_unfinished_jobs
            )

    async def SubmitJob(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.SubmitJobRequest, context: ServicerContext
    ) -> detection_pb2.Job:
        principal = self._principal(context)
        user_id = principal.user_id
        key = checked_idempotency_key(request.idempotency_key)
        metadata = checked_metadata(request.metadata)
        accepted, refused = self._screen(request.images, request.refused)
        if earlier := await self._earlier_job(user_id, key):
            return earlier
        await self._ensure_room_for_a_job(user_id)
        await self._detector.admit(principal, images=len(accepted), job=True)
        try:
            options, model = await self._options(request.params)
            model_name = model.name
        except Unavailable as error:
            if error.code == "model_not_ready":
                raise
            # Triton is away: the job is stored and waits for it (ADR 0005), and its model
            # is checked when it runs (an unknown one then fails the items, naming the known).
            options = self._params(request.params, None)
            model_name = request.params.model.strip() or self._detector.default_model
        return await self._submit_batch(
            user_id=user_id,
            admit=self._admission(principal, len(accepted)),
            uploads=accepted,
            refused=refused,
            options=options,
            model=model_name,
            key=key,
            metadata=metadata,
        )

    async def _earlier_job(self, user_id: str, key: str) -> detection_pb2.Job | None:
        """The job an earlier submission with this idempotency key made, if any: a retried
        submission gets its job back, even once the quota is used up."""
        if not key:
            return None
        found = await jobs.existing_job(
            sessions=self._sessions, user_id=user_id, idempotency_key=key
        )
        return _job(found) if found is not None else None

    def _admission(self, principal: common_pb2.Principal, images: int) -> jobs.JobAdmission:
        """The quota asked again in the transaction that adds the job, under the account's
        job lock (jobs.service.JobAdmission): requests at once were each admitted before any
        of their jobs existed."""

        async def admit(session: AsyncSession) -> None:
            await self._detector.admit(principal, images=images, job=True, session=session)

        return admit

    async def _submit_batch(
        self,
        *,
        user_id: str,
        admit: jobs.JobAdmission,
        uploads: Sequence[tuple[int, JobUpload]],
        refused: Sequence[jobs.Refusal],
        options: DetectionOptions,
        model: str,
        key: str,
        metadata: Mapping[str, str],
        rerun_of: uuid.UUID | None = None,
    ) -> detection_pb2.Job:
        """Store an admitted batch job with this service's storage, queue and job limit."""
        view = await jobs.submit_job(
            sessions=self._sessions,
            storage=self._storage,
            queue=self._queue,
            user_id=user_id,
            max_unfinished=self._max_unfinished_jobs,
            uploads=uploads,
            options=options,
            idempotency_key=key or None,
            refused=refused,
            model=model,
            metadata=metadata,
            rerun_of=rerun_of,
            admit=admit,
        )
        return _job(view)

    async def RerunJob(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.RerunJobRequest, context: ServicerContext
    ) -> detection_pb2.Job:
        """A new job over a job's stored images, or its stored video with the same sampling,
        tracking, counting and redaction (ADR 0058): the caller uploads nothing again, and
        the job is admitted like a submission (unfinished-job limit, monthly quota,
        idempotency key)."""
        principal = self._principal(context)
        user_id = principal.user_id
        job_id = _uuid(request.job_id, "job_id")
        key = checked_idempotency_key(request.idempotency_key)
        metadata = checked_metadata(request.metadata)
        if earlier := await self._earlier_job(user_id, key):
            return earlier
        async with self._sessions() as session:
            source = await reruns.rerun_source(session=session, job_id=job_id, user_id=user_id)
        options, model_name = await self._rerun_options(request.params, source)
        await self._ensure_room_for_a_job(user_id)
        if source.kind == job_models.KIND_VIDEO:
            return await self._rerun_video(
                principal,
                source,
                options=options,
                model=model_name,
                key=key,
                metadata=metadata or source.metadata,
            )
        return await self._rerun_stored_images(
            principal,
            source.items,
            options=options,
            model=model_name,
            key=key,
            metadata=metadata or source.metadata,
            rerun_of=job_id,
        )

    async def RerunHistory(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.RerunHistoryRequest, context: ServicerContext
    ) -> detection_pb2.Job:
        """A new batch job over the stored images of the caller's detections that the history's
        filters keep (ADR 0058), with the request's options: a model tried on what was sent
        before, admitted like a submission."""
        principal = self._principal(context)
        user_id = principal.user_id
        key = checked_idempotency_key(request.idempotency_key)
        metadata = checked_metadata(request.job_metadata)
        filters = self._history_filter(request)
        if earlier := await self._earlier_job(user_id, key):
            return earlier
        options, model = await self._options(request.params)
        await self._ensure_room_for_a_job(user_id)
        async with self._sessions() as session:
            items = await reruns.history_items(
                session=session, user_id=user_id, filters=filters, most=self._max_batch_files
            )
        return await self._rerun_stored_images(
            principal, items, options=options, model=model.name, key=key, metadata=metadata
        )

    async def _rerun_stored_images(
        self,
        principal: common_pb2.Principal,
        items: Sequence[reruns.StoredItem],
        *,
        options: DetectionOptions,
        model: str,
        key: str,
        metadata: Mapping[str, str],
        rerun_of: uuid.UUID | None = None,
    ) -> detection_pb2.Job:
        """A batch job over stored images (a job's, or those the history's filters keep),
        admitted for the images it names before any is read (a refused rerun reads nothing),
        and again in the transaction that adds it."""
        await self._detector.admit(principal, images=len(items), job=True)
        async with reruns.stored_uploads(
            storage=self._storage, inspect=self._detector.inspect, items=items
        ) as (accepted, refused):
            return await self._submit_batch(
                user_id=principal.user_id,
                admit=self._admission(principal, len(items)),
                uploads=accepted,
                refused=refused,
                options=options,
                model=model,
                key=key,
                metadata=metadata,
                rerun_of=rerun_of,
            )

    async def _rerun_video(
        self,
        principal: common_pb2.Principal,
        source: reruns.RerunSource,
        *,
        options: DetectionOptions,
        model: str,
        key: str,
        metadata: Mapping[str, str],
    ) -> detection_pb2.Job:
        """A video job again: its stored video copied to a scratch file and taken in as an
        upload would be, with the sampling, tracking, counting lines and zones and redaction
        it had; its size and redacted classes are checked again, as limits and models may
        have changed since."""
        if self._video_limits is None:
            raise Unavailable("video jobs are not enabled on this server")
        async with self._sessions() as session:
            stored_key, video = await video_jobs.stored_video(
                session=session, job_id=source.job_id, sampled_frames=source.total
            )
        if video.size_bytes > self._video_limits.max_bytes:
            raise video_intake.too_large(video.size_bytes, self._video_limits)
        redact = self._detector.redacted_classes(video.redact)
        await self._detector.admit(principal, images=video.probe.sampled_frames, job=True)
        scratch = self._storage.scratch_path()
        try:
            try:
                stored = await self._storage.local_path(stored_key)
            except ObjectNotFoundError:
                raise FailedPrecondition(
                    "this job's video is gone from storage: submit the video again"
                ) from None
            await asyncio.to_thread(shutil.copyfile, stored, scratch)
            view = await video_jobs.submit_video_job(
                sessions=self._sessions,
                storage=self._storage,
                queue=self._queue,
                user_id=principal.user_id,
                admit=self._admission(principal, video.probe.sampled_frames),
                max_unfinished=self._max_unfinished_jobs,
                scratch=scratch,
                probe=video.probe,
                filename=video.filename,
                size_bytes=video.size_bytes,
                options=options,
                sampling=video.sampling,
                idempotency_key=key or None,
                model=model,
                tracked=video.tracked,
                lines=video.lines,
                zones=video.zones,
                metadata=metadata,
                redact=redact,
                rerun_of=source.job_id,
            )
        finally:
            scratch.unlink(missing_ok=True)
        return _job(view)

    async def _rerun_options(
        self, params: detection_pb2.DetectionParams, source: reruns.RerunSource
    ) -> tuple[DetectionOptions, str]:
        """The job's options with each one the request gives in its place, checked against
        the model the new job runs (the request's, else the job's). The job's classes go to
        that model by name: ids of one model may name other classes in another."""
        model = await self._detector.resolve(params.model.strip() or source.model)
        kept = source.options
        inherits_classes = (not params.classes and kept.class_ids) or (
            not params.class_confidence and kept.class_confidence
        )
        names = await self._class_names_of(source, model) if inherits_classes else ()

        def name(class_id: int) -> str:
            return names[class_id] if class_id < len(names) else str(class_id)

        options = self._detector.options(
            confidence=params.confidence or kept.confidence,
            iou=params.iou or kept.iou,
            classes=list(params.classes) or [name(i) for i in sorted(kept.class_ids or ())],
            max_detections=params.max_detections or kept.max_detections,
            model=model,
            class_confidence=dict(params.class_confidence)
            or {name(i): score for i, score in kept.class_confidence},
            tile_size=params.tile_size or kept.tile_size,
            tile_overlap=params.tile_overlap or (0.0 if params.tile_size else kept.tile_overlap),
            regions=[[(point.x, point.y) for point in region.polygon] for region in params.regions]
            or kept.regions,
        )
        return options, model.name

    async def _class_names_of(
        self, source: reruns.RerunSource, model: ServedModel
    ) -> Sequence[str]:
        """The class names of the model `source` ran with, which its class ids index."""
        if source.model and source.model != model.name:
            try:
                model = await self._detector.resolve(source.model)
            except DomainError as error:
                raise InvalidArgument(
                    f"this job kept only some classes of {source.model}, whose class names"
                    f" cannot be read now ({error.message}): name the classes to keep with"
                    f" {model.name}"
                ) from None
        return model.description.classes or self._detector.class_names

    async def GetJob(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.GetJobRequest, context: ServicerContext
    ) -> detection_pb2.Job:
        user_id = self._user_id(context)
        job_id = _uuid(request.job_id, "job_id")
        async with self._sessions() as session:
            return _job(await jobs.get_job(session=session, job_id=job_id, user_id=user_id))

    async def ListJobs(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.ListJobsRequest, context: ServicerContext
    ) -> detection_pb2.ListJobsResponse:
        user_id = self._user_id(context)
        limit, offset = page_bounds(request.page, default=DEFAULT_PAGE_LIMIT, most=MAX_PAGE_LIMIT)
        status, kind = _job_filter(request)
        metadata = checked_metadata(request.metadata)
        rerun_of = _uuid(request.rerun_of, "rerun_of") if request.rerun_of.strip() else None
        async with self._sessions() as session:
            views, total = await jobs.list_jobs(
                session=session,
                user_id=user_id,
                limit=limit,
                offset=offset,
                status=status,
                kind=kind,
                metadata=metadata,
                rerun_of=rerun_of,
            )
        return detection_pb2.ListJobsResponse(
            jobs=[_job(view) for view in views], total=total, limit=limit, offset=offset
        )

    async def CancelJob(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.CancelJobRequest, context: ServicerContext
    ) -> detection_pb2.Job:
        user_id = self._user_id(context)
        job_id = _uuid(request.job_id, "job_id")
        async with self._sessions.begin() as session:
            return _job(await jobs.cancel_job(session=session, job_id=job_id, user_id=user_id))

    async def DeleteJob(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.DeleteJobRequest, context: ServicerContext
    ) -> Empty:
        user_id = self._user_id(context)
        job_id = _uuid(request.job_id, "job_id")
        await jobs.delete_job(
            sessions=self._sessions,
            storage=self._storage,
            user_id=user_id,
            job_id=job_id,
            forget=self._detector.forget,
        )
        return Empty()

    async def ListDetections(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.ListDetectionsRequest, context: ServicerContext
    ) -> detection_pb2.ListDetectionsResponse:
        user_id = self._user_id(context)
        limit, offset = page_bounds(request.page, default=DEFAULT_PAGE_LIMIT, most=MAX_PAGE_LIMIT)
        filters = self._history_filter(request)
        async with self._sessions() as session:
            records, total = await history.list_detections(
                session=session, user_id=user_id, limit=limit, offset=offset, filters=filters
            )
        return detection_pb2.ListDetectionsResponse(
            items=[_detection(r) for r in records], total=total, limit=limit, offset=offset
        )

    async def SummarizeDetections(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.SummarizeDetectionsRequest, context: ServicerContext
    ) -> detection_pb2.DetectionSummary:
        user_id = self._user_id(context)
        filters = self._history_filter(request)
        async with self._sessions() as session:
            summary = await history.summarize_history(
                session=session, user_id=user_id, filters=filters
            )
        return detection_pb2.DetectionSummary(
            detections=summary.detections,
            objects=summary.objects,
            class_counts=summary.class_counts,
        )

    async def GetDetection(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.GetDetectionRequest, context: ServicerContext
    ) -> detection_pb2.Detection:
        user_id = self._user_id(context)
        detection_id = _uuid(request.detection_id, "detection_id")
        async with self._sessions() as session:
            record = await history.get_detection(
                session=session, user_id=user_id, detection_id=detection_id
            )
        return _detection(record)

    async def DeleteDetection(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.DeleteDetectionRequest, context: ServicerContext
    ) -> Empty:
        user_id = self._user_id(context)
        detection_id = _uuid(request.detection_id, "detection_id")
        await history.delete_detection(
            sessions=self._sessions,
            storage=self._storage,
            user_id=user_id,
            detection_id=detection_id,
            forget=self._detector.forget,
        )
        return Empty()

    async def DeleteDetections(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.DeleteDetectionsRequest, context: ServicerContext
    ) -> detection_pb2.DeleteDetectionsResponse:
        user_id = self._user_id(context)
        deletion = await history.delete_history(
            sessions=self._sessions,
            storage=self._storage,
            user_id=user_id,
            filters=self._history_filter(request),
            everything=request.everything,
            forget=self._detector.forget,
        )
        return detection_pb2.DeleteDetectionsResponse(
            deleted=deletion.deleted,
            kept_in_unfinished_jobs=deletion.kept_in_unfinished_jobs,
            more=deletion.more,
        )

    async def GetAnnotatedImage(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.GetAnnotatedImageRequest, context: ServicerContext
    ) -> AsyncIterator[detection_pb2.ImageChunk]:
        """The stored upload as it was, or re-encoded as JPEG with its boxes drawn or classes
        pixelated (ADR 0049)."""
        user_id = self._user_id(context)
        detection_id = _uuid(request.detection_id, "detection_id")
        rendering = Rendering(
            boxes=request.annotated, redact=self._detector.redacted_classes(request.redact)
        )
        objects: Sequence[DetectedObject] = []
        async with self._sessions() as session:
            image = await stored_images.get_image(
                session=session, user_id=user_id, detection_id=detection_id
            )
            # The objects only where something is drawn: the upload as it was needs none.
            if rendering.draws:
                record = await history.get_detection(
                    session=session, user_id=user_id, detection_id=detection_id
                )
                objects = record.objects
                rendering = dataclasses.replace(rendering, regions=record.regions)
        async for chunk in self._image_chunks(image, objects, rendering):
            yield chunk

    async def _image_chunks(
        self,
        image: stored_images.ImageRecord,
        objects: Sequence[DetectedObject],
        rendering: Rendering,
    ) -> AsyncIterator[detection_pb2.ImageChunk]:
        """A stored image as uploaded when `rendering` draws nothing, else as JPEG rendered so
        from `objects`."""
        try:
            if not rendering.draws:
                async for chunk in self._storage.open(image.storage_key):
                    yield detection_pb2.ImageChunk(data=chunk, content_type=image.content_type)
                return
            data = await self._storage.get(image.storage_key)
        except ObjectNotFoundError:
            raise NotFound("the image of this detection is no longer stored") from None
        jpeg = await self._detector.annotate(data, objects, rendering)
        for start in range(0, len(jpeg), CHUNK_BYTES):
            yield detection_pb2.ImageChunk(
                data=jpeg[start : start + CHUNK_BYTES], content_type="image/jpeg"
            )

    async def ExportDetections(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.ExportDetectionsRequest, context: ServicerContext
    ) -> AsyncIterator[detection_pb2.ExportChunk]:
        """A finished job's, or the filtered history's, results as one file, page by page.

        Everything that can be refused is checked before the first chunk (an unknown format
        or class, another user's job, a job still running), so the gateway can still answer
        with an error status; the first chunk carries the media type and file name."""
        user_id = self._user_id(context)
        format_name = _EXPORT_FORMATS.get(request.format)
        if format_name is None:
            raise InvalidArgument(
                f"unknown export format; choose one of: {', '.join(export_formats.FORMAT_NAMES)}"
            )
        now = datetime.now(UTC)
        pages: AsyncIterator[Sequence[DetectionRecord]]
        if request.job_id:
            if not self._history_filter(request).keeps_everything:
                raise InvalidArgument("a job's export takes no history filters")
            job_id = _uuid(request.job_id, "job_id")
            await exports.finished_job(sessions=self._sessions, user_id=user_id, job_id=job_id)
            pages = exports.job_pages(sessions=self._sessions, user_id=user_id, job_id=job_id)
            stem = f"objectvision-job-{job_id}"
        else:
            pages = exports.history_pages(
                sessions=self._sessions, user_id=user_id, filters=self._history_filter(request)
            )
            stem = f"objectvision-history-{now:%Y%m%dT%H%M%SZ}"
        writer = export_formats.writer_for(
            format_name, model_classes=exports.model_classes(self._detector), created_at=now
        )
        try:
            yield detection_pb2.ExportChunk(
                content_type=writer.media_type, filename=f"{stem}-{format_name}.{writer.extension}"
            )
            async for data in exports.export_chunks(writer, pages, chunk_bytes=CHUNK_BYTES):
                yield detection_pb2.ExportChunk(data=data)
        finally:
            writer.close()  # also when the caller left before the first page

    async def EvaluateJob(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.EvaluateJobRequest, context: ServicerContext
    ) -> detection_pb2.JobEvaluation:
        """The caller's finished batch or video job scored against its ground-truth labels."""
        user_id = self._user_id(context)
        job_id = _uuid(request.job_id, "job_id")
        if len(request.labels) > MAX_LABELS_BYTES:
            raise PayloadTooLarge(
                f"the labels file is {len(request.labels)} bytes; at most {MAX_LABELS_BYTES}"
            )
        if not request.labels:
            raise InvalidArgument(
                "labels is empty: send a zip of YOLO labels or COCO JSON (for a video job,"
                " named by frame, or MOTChallenge's gt.txt)"
            )
        async with self._scoring:
            evaluated = await evaluation.evaluate_job(
                sessions=self._sessions,
                user_id=user_id,
                job_id=job_id,
                labels=request.labels,
                model_classes=exports.model_classes(self._detector),
            )
        return _evaluation_reply(evaluated, exports.model_classes(self._detector))

    async def SubmitVideoJob(  # noqa: N802 - gRPC method name
        self,
        request_iterator: AsyncIterator[detection_pb2.VideoUpload],
        context: ServicerContext,
    ) -> detection_pb2.Job:
        """The header first (checked before a byte of video is read), then the file streamed
        to a scratch file, its container sniffed from the first chunk and probed before the
        job exists. A refused video leaves no file and no row behind."""
        principal = self._principal(context)
        user_id = principal.user_id
        limits, sandbox = self._video_limits, self._video_sandbox
        if limits is None or sandbox is None or self._executor is None:
            raise Unavailable("video jobs are not enabled on this server")
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None or first.WhichOneof("part") != "header":
            raise InvalidArgument("a video upload starts with its header")
        header = first.header
        key = checked_idempotency_key(header.idempotency_key)
        metadata = checked_metadata(header.metadata)
        if header.size_bytes > limits.max_bytes:
            raise video_intake.too_large(header.size_bytes, limits)
        sampling = sampling_from(
            fps=header.sampling.fps,
            every=header.sampling.every,
            default_fps=self._video_default_fps,
            limits=limits,
        )
        lines = checked_lines(counting_lines(header.lines), tracked=header.track)
        zones = checked_zones(counting_zones(header.zones), tracked=header.track)
        redact = self._detector.redacted_classes(header.redact)
        options, model = await self._options(header.params)
        if earlier := await self._earlier_job(user_id, key):
            return earlier
        # Refused before the upload, not after 200 MiB of it: an account with as many
        # unfinished jobs as it may have, or one with not even one frame of its quota left (the
        # frames the sampling takes are counted against the quota once the probe knows them).
        await self._ensure_room_for_a_job(user_id)
        await self._detector.admit(principal, images=1, job=True)

        async def chunks() -> AsyncIterator[bytes]:
            async for message in messages:
                if message.WhichOneof("part") != "chunk":
                    raise InvalidArgument("only the first message of a video upload is a header")
                yield message.chunk

        scratch = self._storage.scratch_path()
        try:
            container, size = await video_intake.receive(chunks(), scratch=scratch, limits=limits)
            probe = await video_intake.inspect(
                scratch,
                container,
                limits=limits,
                sampling=sampling,
                sandbox=sandbox,
                executor=self._executor,
            )
            checked_lines(lines, tracked=True, frame_size=(probe.width, probe.height))
            checked_zones(zones, tracked=True, frame_size=(probe.width, probe.height))
            await self._detector.admit(principal, images=probe.sampled_frames, job=True)
            view = await video_jobs.submit_video_job(
                sessions=self._sessions,
                storage=self._storage,
                queue=self._queue,
                user_id=user_id,
                admit=self._admission(principal, probe.sampled_frames),
                max_unfinished=self._max_unfinished_jobs,
                scratch=scratch,
                probe=probe,
                filename=sanitize_filename(header.filename),
                size_bytes=size,
                options=options,
                sampling=sampling,
                idempotency_key=key or None,
                model=model.name,
                tracked=header.track,
                lines=lines,
                zones=zones,
                metadata=metadata,
                redact=redact,
            )
        finally:
            scratch.unlink(missing_ok=True)
        return _job(view)

    async def ListVideoFrames(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.ListVideoFramesRequest, context: ServicerContext
    ) -> detection_pb2.ListVideoFramesResponse:
        user_id = self._user_id(context)
        job_id = _uuid(request.job_id, "job_id")
        limit, offset = page_bounds(
            request.page, default=MAX_VIDEO_FRAMES_PAGE, most=MAX_VIDEO_FRAMES_PAGE
        )
        async with self._sessions() as session:
            frames, total, width, height = await video_jobs.list_frames(
                session=session, job_id=job_id, user_id=user_id, limit=limit, offset=offset
            )
        return detection_pb2.ListVideoFramesResponse(
            frames=[_video_frame(frame) for frame in frames],
            total=total,
            limit=limit,
            offset=offset,
            width=width,
            height=height,
        )

    async def GetAnnotatedVideo(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.GetAnnotatedVideoRequest, context: ServicerContext
    ) -> AsyncIterator[detection_pb2.VideoChunk]:
        """The finished job's annotated video, streamed from storage in chunks."""
        user_id = self._user_id(context)
        job_id = _uuid(request.job_id, "job_id")
        async with self._sessions() as session:
            key = await video_jobs.annotated_key(session=session, job_id=job_id, user_id=user_id)
        async for chunk in self._video_chunks(key):
            yield chunk

    async def _video_chunks(self, key: str) -> AsyncIterator[detection_pb2.VideoChunk]:
        try:
            async for chunk in self._storage.open(key):
                yield detection_pb2.VideoChunk(data=chunk, content_type=ANNOTATED_CONTENT_TYPE)
        except ObjectNotFoundError:
            raise NotFound("the annotated video of this job is no longer stored") from None

    async def _opened_uncounted(self, token: str) -> sharing.SharedView | sharing.SharedVideoView:
        """What a link shows, for reading its image or video: the view was counted already."""
        async with self._sessions() as session:
            return await sharing.open_link(
                session=session, token=token, now=datetime.now(UTC), count_view=False
            )

    async def GetSharedVideo(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.GetSharedVideoRequest, context: ServicerContext
    ) -> AsyncIterator[detection_pb2.VideoChunk]:
        """A shared video job's annotated video, as GetAnnotatedVideo answers its owner."""
        shared = await self._opened_uncounted(request.token)
        if not isinstance(shared, sharing.SharedVideoView):
            raise FailedPrecondition(
                "this share link shows an image, not a video job: read its image",
                code="share_link_shows_image",
            )
        async for chunk in self._video_chunks(shared.annotated_key):
            yield chunk

    def _account(self, user_id: str, context: ServicerContext, *, action: str) -> str:
        """The account a usage or retention RPC names: the caller's own (empty or theirs),
        another's for an admin only."""
        principal = self._principal(context)
        wanted = user_id.strip() or principal.user_id
        if wanted != principal.user_id and not principal.is_admin:
            raise PermissionDenied(f"only an admin can {action} another account")
        return wanted

    async def GetUsage(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.GetUsageRequest, context: ServicerContext
    ) -> detection_pb2.Usage:
        user_id = self._account(request.user_id, context, action="read the usage of")
        days = request.days or DEFAULT_USAGE_DAYS
        if not 1 <= days <= MAX_USAGE_DAYS:
            raise InvalidArgument(f"days must be between 1 and {MAX_USAGE_DAYS} (0 = default)")
        standing, listed = await self._usage.report(user_id, days=days)
        return _usage(user_id, standing, listed)

    def _admin_target(self, user_id: str, context: ServicerContext, *, setting: str) -> str:
        """The account an admin-only per-account `setting` (a quota, a retention period)
        names: refused to anyone but an admin, and it must name one."""
        if not self._principal(context).is_admin:
            raise PermissionDenied(f"only an admin can set an account's {setting}")
        target = user_id.strip()
        if not target:
            raise InvalidArgument(f"name the account whose {setting} to set")
        return target

    async def SetUsageQuota(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.SetUsageQuotaRequest, context: ServicerContext
    ) -> detection_pb2.Usage:
        user_id = self._admin_target(request.user_id, context, setting="quota")
        monthly = request.monthly_images if request.HasField("monthly_images") else None
        if monthly is not None and monthly < 0:
            raise InvalidArgument("monthly_images must not be negative (0 = no quota)")
        await self._usage.set_quota(user_id, monthly)
        standing, listed = await self._usage.report(user_id, days=DEFAULT_USAGE_DAYS)
        return _usage(user_id, standing, listed)

    async def _retention(self, user_id: str) -> detection_pb2.Retention:
        async with self._sessions() as session:
            custom = await retention.custom_period(session=session, user_id=user_id)
        return detection_pb2.Retention(
            user_id=user_id,
            days=self._retention_days if custom is None else custom,
            custom=custom is not None,
            default_days=self._retention_days,
        )

    async def GetRetention(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.GetRetentionRequest, context: ServicerContext
    ) -> detection_pb2.Retention:
        user_id = self._account(request.user_id, context, action="read the retention of")
        return await self._retention(user_id)

    async def SetRetention(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.SetRetentionRequest, context: ServicerContext
    ) -> detection_pb2.Retention:
        user_id = self._admin_target(request.user_id, context, setting="retention period")
        days = request.days if request.HasField("days") else None
        if days is not None and not 0 <= days <= MAX_RETENTION_DAYS:
            raise InvalidArgument(
                f"days must be between 0 and {MAX_RETENTION_DAYS} (0 = keep forever)"
            )
        async with self._sessions.begin() as session:
            if days is None:
                await retention.clear_custom_period(session=session, user_id=user_id)
            else:
                await retention.set_custom_period(
                    session=session, user_id=user_id, days=days, now=datetime.now(UTC)
                )
        return await self._retention(user_id)

    async def CreateShareLink(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.CreateShareLinkRequest, context: ServicerContext
    ) -> detection_pb2.CreatedShareLink:
        user_id = self._user_id(context)
        detection_id = _uuid(request.detection_id, "detection_id") if request.detection_id else None
        job_id = _uuid(request.job_id, "job_id") if request.job_id else None
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            created = await sharing.create_link(
                session=session,
                user_id=user_id,
                detection_id=detection_id,
                job_id=job_id,
                days=request.expires_in_days,
                now=now,
                redact=self._detector.redacted_classes(request.redact),
            )
        return detection_pb2.CreatedShareLink(
            link=_share_link(created.link, now), token=created.token
        )

    async def ListShareLinks(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.ListShareLinksRequest, context: ServicerContext
    ) -> detection_pb2.ListShareLinksResponse:
        user_id = self._user_id(context)
        detection_id = _uuid(request.detection_id, "detection_id") if request.detection_id else None
        job_id = _uuid(request.job_id, "job_id") if request.job_id else None
        limit, offset = page_bounds(request.page, default=DEFAULT_PAGE_LIMIT, most=MAX_PAGE_LIMIT)
        async with self._sessions() as session:
            links, total = await sharing.list_links(
                session=session,
                user_id=user_id,
                detection_id=detection_id,
                job_id=job_id,
                limit=limit,
                offset=offset,
            )
        now = datetime.now(UTC)
        return detection_pb2.ListShareLinksResponse(
            links=[_share_link(link, now) for link in links],
            total=total,
            limit=limit,
            offset=offset,
        )

    async def RevokeShareLink(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.RevokeShareLinkRequest, context: ServicerContext
    ) -> detection_pb2.ShareLink:
        user_id = self._user_id(context)
        link_id = _uuid(request.share_link_id, "share_link_id")
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            link = await sharing.revoke_link(
                session=session, user_id=user_id, link_id=link_id, now=now
            )
        return _share_link(link, now)

    async def GetShared(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.GetSharedRequest, context: ServicerContext
    ) -> detection_pb2.Shared:
        """No principal: the token is the credential (ADR 0048). Counts a view."""
        async with self._sessions.begin() as session:
            shared = await sharing.open_link(
                session=session, token=request.token, now=datetime.now(UTC), count_view=True
            )
        if isinstance(shared, sharing.SharedVideoView):
            return detection_pb2.Shared(video=_shared_video(shared))
        record = shared.detection
        return detection_pb2.Shared(
            detection=detection_pb2.SharedDetection(
                width=record.width,
                height=record.height,
                objects=objects_reply(record.objects),
                model=record.model,
                model_version=record.model_version,
                detected_at=_timestamp(record.created_at),
                expires_at=_timestamp(shared.expires_at),
            )
        )

    async def GetSharedImage(  # noqa: N802 - gRPC method name
        self, request: detection_pb2.GetSharedImageRequest, context: ServicerContext
    ) -> AsyncIterator[detection_pb2.ImageChunk]:
        """The shared detection's image, as GetAnnotatedImage answers its owner."""
        shared = await self._opened_uncounted(request.token)
        if isinstance(shared, sharing.SharedVideoView):
            raise FailedPrecondition(
                "this share link shows a video job, not an image: read its video",
                code="share_link_shows_video",
            )
        rendering = Rendering(
            boxes=request.annotated, redact=shared.redact, regions=shared.detection.regions
        )
        async for chunk in self._image_chunks(shared.image, shared.detection.objects, rendering):
            yield chunk
