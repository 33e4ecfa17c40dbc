"""A finished batch or video job scored against the caller's ground truth (ADR 0054, 0056).

The job's stored detections are what is scored, not a new run: the numbers describe the
results the caller already has, with the job's own model, thresholds, classes and regions.
The labels are held to the same terms so that the score measures the model rather than the
request: labelled objects of classes the job did not ask for, or standing outside its
regions of interest, are left out, as the job's detections of them were.

A video job's sampled frames are its images, matched to the labels by frame number; only the
frames from the first to the last the labels cover are scored (frames outside them were not
labelled, rather than labelled empty). A tracked job scored against labels that carry
identities (MOTChallenge's) is also scored on how it kept them (evaluation/tracking.py).
"""

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.evaluation.labels import (
    GroundTruth,
    ImageLabels,
    LabelBox,
    LabelsFormat,
    VideoGroundTruth,
    image_key,
    parse_labels,
    parse_video_labels,
)
from detection_service.evaluation.scoring import ScoredImage, Scores, score
from detection_service.evaluation.tracking import TrackedFrame, TrackingEvaluation, score_tracking
from detection_service.exports import service as exports
from detection_service.history.service import DetectionRecord
from detection_service.jobs import service as jobs
from detection_service.jobs.models import KIND_BATCH, KIND_VIDEO
from detection_service.pipeline.regions import standing_in
from detection_service.pipeline.types import DetectedObject, DetectionOptions
from detection_service.video import service as videos
from detection_service.video.service import CommittedFrames
from objectvision_common.errors import InvalidArgument

# Label entries that match no image of the job are counted; this many are named.
MAX_UNMATCHED_NAMED = 20
# Labelled and detected objects one evaluation scores together: COCO's evaluation costs about
# a second per 5,000 on one core, so this bounds a call to seconds, not minutes.
MAX_SCORED_OBJECTS = 50_000


@dataclass(frozen=True)
class JobEvaluation:
    job_id: uuid.UUID
    model: str
    labels_format: LabelsFormat
    min_confidence: float
    images: int
    images_without_labels: int
    unmatched_labels: list[str]
    unmatched_label_count: int
    unknown_classes: tuple[str, ...]
    scores: Scores
    job_kind: str = KIND_BATCH
    # A video job's sampled frames outside the labels' first to last frame: not scored.
    frames_outside_labels: int = 0
    # A tracked video job against labels with identities.
    tracking: TrackingEvaluation | None = None


async def evaluate_job(
    *,
    sessions: async_sessionmaker[AsyncSession],
    user_id: str,
    job_id: uuid.UUID,
    labels: bytes,
    model_classes: Sequence[str],
) -> JobEvaluation:
    """Score the caller's finished job against `labels`: a YOLO zip or COCO JSON for a batch
    job; for a video job those named by frame, or MOTChallenge's gt.txt.

    Refused (InvalidArgument) when the labels cannot be read, name no image or frame of the
    job, or hold no object to score; a running job is FailedPrecondition, another's NotFound."""
    job = await exports.finished_job(
        sessions=sessions,
        user_id=user_id,
        job_id=job_id,
        action="evaluation",
        kinds=(KIND_BATCH, KIND_VIDEO),
    )
    async with sessions() as session:
        options = await jobs.job_options(session=session, job_id=job_id)
        video = (
            await videos.committed_frames(session=session, job_id=job_id, user_id=user_id)
            if job.kind == KIND_VIDEO
            else None
        )
    if video is not None:
        video_truth = await asyncio.to_thread(parse_video_labels, labels, model_classes)
        return await asyncio.to_thread(
            evaluate_frames,
            job_id=job.id,
            model=job.model,
            options=options,
            truth=video_truth,
            video=video,
            model_classes=model_classes,
        )
    records = [
        record
        async for page in exports.job_pages(sessions=sessions, user_id=user_id, job_id=job_id)
        for record in page
    ]
    uploads = {image_key(record.filename) for record in records}
    truth = await asyncio.to_thread(parse_labels, labels, model_classes, uploads)
    return await asyncio.to_thread(
        evaluate_records,
        job_id=job.id,
        model=job.model,
        options=options,
        truth=truth,
        records=records,
        model_classes=model_classes,
    )


def evaluate_records(
    *,
    job_id: uuid.UUID,
    model: str,
    options: DetectionOptions,
    truth: GroundTruth,
    records: Sequence[DetectionRecord],
    model_classes: Sequence[str],
) -> JobEvaluation:
    """The job's detected images (`records`, with the options it ran with) scored against
    `truth`; CPU-bound (run it in a worker thread)."""
    if not records:
        raise InvalidArgument(f"job {job_id} has no detected image to score")
    matched: set[str] = set()
    scored: list[ScoredImage] = []
    without_labels = 0
    for record in records:
        labels = truth.of(record.filename)
        boxes: list[LabelBox] = []
        if labels is None:
            without_labels += 1
        else:
            matched.add(labels.name)
            boxes = _as_the_job_saw(
                _boxes_of(
                    labels, f"'{record.filename}' was uploaded at", record.width, record.height
                ),
                options,
                record.width,
                record.height,
                model_classes,
            )
        scored.append(ScoredImage(truth=boxes, detected=record.objects))
    if not matched:
        raise InvalidArgument(
            f"no label entry names an image of job {job_id}; entries are matched to uploads by"
            " file name without extension (labels/000049.txt or file_name 000049.jpg labels"
            " the upload 000049.jpg)"
        )
    _check_scorable(scored, "images")
    unmatched = sorted(
        [
            *truth.unread,
            *(image.name for image in truth.images.values() if image.name not in matched),
        ]
    )
    return JobEvaluation(
        job_id=job_id,
        model=model,
        labels_format=truth.format,
        min_confidence=options.confidence,
        images=len(scored),
        images_without_labels=without_labels,
        unmatched_labels=unmatched[:MAX_UNMATCHED_NAMED],
        unmatched_label_count=len(unmatched),
        unknown_classes=truth.unknown_classes,
        scores=score(scored, model_classes, lowest=options.floor),
    )


def evaluate_frames(
    *,
    job_id: uuid.UUID,
    model: str,
    options: DetectionOptions,
    truth: VideoGroundTruth,
    video: CommittedFrames,
    model_classes: Sequence[str],
) -> JobEvaluation:
    """The video job's sampled frames scored against `truth`, and its tracking where both
    the job and the labels follow identities; CPU-bound (run it in a worker thread)."""
    detected = [frame for frame in video.frames if frame.error is None]
    first, last = truth.span()
    inside = [frame for frame in detected if first <= frame.frame_index <= last]
    if not inside:
        sampled = (
            f"frames {detected[0].frame_index} to {detected[-1].frame_index}"
            if detected
            else "no frame"
        )
        raise InvalidArgument(
            f"the labels cover frames {first} to {last} (counted from 0) and job {job_id}"
            f" detected {sampled}: no frame it sampled is labelled"
        )
    scored: list[ScoredImage] = []
    tracked: list[TrackedFrame] = []
    without_labels = 0
    for frame in inside:
        labels = truth.frames.get(frame.frame_index)
        boxes: list[LabelBox] = []
        if labels is None:
            without_labels += 1
        else:
            boxes = _as_the_job_saw(
                _boxes_of(labels, "the video's frames are", video.width, video.height),
                options,
                video.width,
                video.height,
                model_classes,
            )
        scored.append(ScoredImage(truth=boxes, detected=frame.objects))
        tracked.append(TrackedFrame(frame.frame_index, boxes, frame.objects))
    _check_scorable(scored, "frames")
    return JobEvaluation(
        job_id=job_id,
        model=model,
        labels_format=truth.format,
        min_confidence=options.confidence,
        images=len(scored),
        images_without_labels=without_labels,
        unmatched_labels=list(truth.unnumbered[:MAX_UNMATCHED_NAMED]),
        unmatched_label_count=len(truth.unnumbered),
        unknown_classes=truth.unknown_classes,
        scores=score(scored, model_classes, lowest=options.floor),
        job_kind=KIND_VIDEO,
        frames_outside_labels=len(detected) - len(inside),
        tracking=score_tracking(tracked) if truth.tracked and video.tracked else None,
    )


def _boxes_of(labels: ImageLabels, what: str, width: int, height: int) -> list[LabelBox]:
    """The labelled boxes in pixels of the upload or frame of that size (`what` says which
    in a refusal: "'street.jpg' was uploaded at")."""
    if labels.size is not None and labels.size != (width, height):
        raise InvalidArgument(
            f"the labels give '{labels.name}' as {labels.size[0]}x{labels.size[1]} pixels, but"
            f" {what} {width}x{height}: its boxes would not fall where its objects are"
        )
    return labels.in_pixels(width, height)


def _check_scorable(scored: Sequence[ScoredImage], unit: str) -> None:
    objects = sum(len(image.truth) + len(image.detected) for image in scored)
    if objects > MAX_SCORED_OBJECTS:
        raise InvalidArgument(
            f"the job's {unit} hold {objects} labelled and detected objects together; one"
            f" evaluation scores at most {MAX_SCORED_OBJECTS}: score a job of fewer {unit}"
        )
    if not any(image.truth for image in scored):
        raise InvalidArgument(
            f"the labels hold no object to score for the job's {unit} (of the classes it"
            " asked for and in its regions)"
        )


def _as_the_job_saw(
    boxes: list[LabelBox],
    options: DetectionOptions,
    width: int,
    height: int,
    model_classes: Sequence[str],
) -> list[LabelBox]:
    """The labelled objects the job could have answered: of the classes it asked for, and
    standing in its regions of interest (the rule its detections were kept by)."""
    if options.class_ids is not None:
        boxes = [box for box in boxes if box.class_id in options.class_ids]
    if not options.regions or not boxes:
        return boxes
    as_objects = [
        DetectedObject(
            box.class_id, model_classes[box.class_id], 1.0, box.x1, box.y1, box.x2, box.y2
        )
        for box in boxes
    ]
    kept = {id(obj) for obj in standing_in(as_objects, options.regions, width, height)}
    return [box for box, obj in zip(boxes, as_objects, strict=True) if id(obj) in kept]
