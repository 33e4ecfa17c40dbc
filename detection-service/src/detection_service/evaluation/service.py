"""A finished batch job scored against the caller's ground truth (ADR 0054).

The job's stored detections are what is scored, not a new run: the numbers describe the
results the caller already has, with the job's own model, thresholds, classes and regions.
The labels are held to the same terms so that the score measures the model rather than the
request: labelled objects of classes the job did not ask for, or standing outside its
regions of interest, are left out, as the job's detections of them were.
"""

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.evaluation.labels import (
    GroundTruth,
    LabelBox,
    LabelsFormat,
    image_key,
    parse_labels,
)
from detection_service.evaluation.scoring import ScoredImage, Scores, score
from detection_service.exports import service as exports
from detection_service.history.service import DetectionRecord
from detection_service.jobs import service as jobs
from detection_service.pipeline.regions import standing_in
from detection_service.pipeline.types import DetectedObject, DetectionOptions
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


async def evaluate_job(
    *,
    sessions: async_sessionmaker[AsyncSession],
    user_id: str,
    job_id: uuid.UUID,
    labels: bytes,
    model_classes: Sequence[str],
) -> JobEvaluation:
    """Score the caller's finished batch job against `labels` (YOLO zip or COCO JSON).

    Refused (InvalidArgument) when the labels cannot be read, name no image of the job, or
    hold no object to score; a running job is FailedPrecondition, another's NotFound."""
    job = await exports.finished_job(
        sessions=sessions, user_id=user_id, job_id=job_id, action="evaluation"
    )
    async with sessions() as session:
        options = await jobs.job_options(session=session, job_id=job_id)
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
            if labels.size is not None and labels.size != (record.width, record.height):
                raise InvalidArgument(
                    f"the labels give '{labels.name}' as {labels.size[0]}x{labels.size[1]}"
                    f" pixels, but '{record.filename}' was uploaded at {record.width}x"
                    f"{record.height}: its boxes would not fall where its objects are"
                )
            boxes = _as_the_job_saw(
                labels.in_pixels(record.width, record.height), options, record, model_classes
            )
        scored.append(ScoredImage(truth=boxes, detected=record.objects))
    if not matched:
        raise InvalidArgument(
            f"no label entry names an image of job {job_id}; entries are matched to uploads by"
            " file name without extension (labels/000049.txt or file_name 000049.jpg labels"
            " the upload 000049.jpg)"
        )
    objects = sum(len(image.truth) + len(image.detected) for image in scored)
    if objects > MAX_SCORED_OBJECTS:
        raise InvalidArgument(
            f"the job's images hold {objects} labelled and detected objects together; one"
            f" evaluation scores at most {MAX_SCORED_OBJECTS}: score a job of fewer images"
        )
    if not any(image.truth for image in scored):
        raise InvalidArgument(
            "the labels hold no object to score for the job's images (of the classes it asked"
            " for and in its regions)"
        )
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


def _as_the_job_saw(
    boxes: list[LabelBox],
    options: DetectionOptions,
    record: DetectionRecord,
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
    kept = {
        id(obj) for obj in standing_in(as_objects, options.regions, record.width, record.height)
    }
    return [box for box, obj in zip(boxes, as_objects, strict=True) if id(obj) in kept]
