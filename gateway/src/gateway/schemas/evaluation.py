"""The body of a job's evaluation against ground-truth labels (ADR 0054)."""

from collections.abc import Iterable
from typing import Literal, Self

from google.protobuf.message import Message
from pydantic import Field

from gateway.schemas.base import ApiModel
from objectvision.v1 import detection_pb2


def _optional(message: Message, name: str) -> float | None:
    """An optional score: None where the service left it unset (undefined, not zero)."""
    return float(getattr(message, name)) if message.HasField(name) else None


class CurvePointOut(ApiModel):
    """Keeping the detections that score at least `confidence`: their precision, recall and
    F1 at IoU 0.5. A curve lists the job's lowest threshold, then each hundredth above it that
    changes what is kept: a point holds until the next one's confidence."""

    confidence: float
    precision: float
    recall: float
    f1: float

    @classmethod
    def of(cls, points: Iterable[detection_pb2.CurvePoint]) -> list[Self]:
        return [
            cls(
                confidence=point.confidence,
                precision=point.precision,
                recall=point.recall,
                f1=point.f1,
            )
            for point in points
        ]


class SizeEvaluationOut(ApiModel):
    size: Literal["small", "medium", "large"] = Field(
        description="COCO's object size by box area: small under 32 x 32 pixels, medium to"
        " 96 x 96, large above."
    )
    ground_truth: int = Field(description="Labelled objects of that size.")
    map50_95: float | None = Field(
        description="mAP over IoU 0.50 to 0.95 of those objects; null without any."
    )

    @classmethod
    def from_proto(cls, row: detection_pb2.SizeEvaluation) -> Self:
        size: Literal["small", "medium", "large"] = (
            "small" if row.size == "small" else "medium" if row.size == "medium" else "large"
        )
        return cls(size=size, ground_truth=row.ground_truth, map50_95=_optional(row, "map50_95"))


class TrackingEvaluationOut(ApiModel):
    """How a tracked video job kept its objects' identities (MOTChallenge's CLEAR MOT and
    identity metrics, py-motmetrics), over its sampled frames, matching at IoU 0.5 within a
    class. Only detections with a track id take part (not an object's first sampled frame,
    before its track is confirmed)."""

    mota: float = Field(
        description="1 - (misses + false detections + identity switches) / labelled objects;"
        " below 0 when those outnumber the objects."
    )
    motp: float | None = Field(description="Mean IoU of the matched pairs; null without any.")
    idf1: float = Field(
        description="F1 of the one best assignment of tracks to labelled identities: how long"
        " each object kept one id."
    )
    id_precision: float
    id_recall: float
    id_switches: int = Field(description="Times a labelled object was matched to another track.")
    fragmentations: int = Field(description="Times a labelled object's matching was interrupted.")
    ground_truth_tracks: int = Field(description="Labelled identities.")
    mostly_tracked: int = Field(description="Identities matched in at least 80% of their frames.")
    partially_tracked: int
    mostly_lost: int = Field(description="Identities matched in under 20% of their frames.")
    false_positives: int
    misses: int

    @classmethod
    def from_proto(cls, message: Message, name: str = "tracking") -> Self | None:
        """The `tracking` field of `message`, None where the service left it out."""
        if not message.HasField(name):
            return None
        row: detection_pb2.TrackingEvaluation = getattr(message, name)
        return cls(
            mota=row.mota,
            motp=_optional(row, "motp"),
            idf1=row.idf1,
            id_precision=row.id_precision,
            id_recall=row.id_recall,
            id_switches=row.id_switches,
            fragmentations=row.fragmentations,
            ground_truth_tracks=row.ground_truth_tracks,
            mostly_tracked=row.mostly_tracked,
            partially_tracked=row.partially_tracked,
            mostly_lost=row.mostly_lost,
            false_positives=row.false_positives,
            misses=row.misses,
        )


class ClassEvaluationOut(ApiModel):
    class_id: int
    class_name: str
    ground_truth: int = Field(description="Labelled objects of the class that were scored.")
    detections: int = Field(description="Objects of the class the job detected.")
    ap50_95: float | None = Field(
        description="Average precision over IoU 0.50 to 0.95; null without ground truth."
    )
    ap50: float | None = Field(
        description="Average precision at IoU 0.50; null without ground truth."
    )
    precision: float | None = Field(description="At IoU 0.5; null without detections.")
    recall: float | None = Field(description="At IoU 0.5; null without ground truth.")
    f1: float | None = Field(
        description="The best F1 at IoU 0.5 over thresholds at or above the job's; null without"
        " ground truth or without a correct detection."
    )
    f1_confidence: float | None = Field(
        description="The score a detection needs to be kept for that F1: this class's"
        " threshold to detect with."
    )
    curve: list[CurvePointOut] = Field(
        description="Precision, recall and F1 by threshold; empty without ground truth or"
        " without detections."
    )
    tracking: TrackingEvaluationOut | None = Field(
        default=None,
        description="A tracked video job against labels with identities: this class's"
        " tracking; null otherwise.",
    )

    @classmethod
    def from_proto(cls, row: detection_pb2.ClassEvaluation) -> Self:
        return cls(
            class_id=row.class_id,
            class_name=row.class_name,
            ground_truth=row.ground_truth,
            detections=row.detections,
            ap50_95=_optional(row, "ap50_95"),
            ap50=_optional(row, "ap50"),
            precision=_optional(row, "precision"),
            recall=_optional(row, "recall"),
            f1=_optional(row, "f1"),
            f1_confidence=_optional(row, "f1_confidence"),
            curve=CurvePointOut.of(row.curve),
            tracking=TrackingEvaluationOut.from_proto(row),
        )


class ConfusionOut(ApiModel):
    actual: str | None = Field(
        description="The labelled class; null: detections where nothing was labelled."
    )
    predicted: str | None = Field(
        description="The class detected in its place (IoU 0.5); null: the objects missed."
    )
    count: int

    @classmethod
    def from_proto(cls, cell: detection_pb2.Confusion) -> Self:
        return cls(actual=cell.actual or None, predicted=cell.predicted or None, count=cell.count)


LabelsFormat = Literal["yolo", "coco", "mot"]


class JobEvaluationOut(ApiModel):
    job_id: str
    job_kind: Literal["batch", "video"] = Field(
        description="A video job's sampled frames are its images: `images` counts the frames"
        " scored."
    )
    model: str
    labels_format: LabelsFormat
    min_confidence: float = Field(
        description="The job's confidence threshold: weaker detections were never kept, so"
        " they cannot count (submit the job with a low confidence for a full mAP curve)."
    )
    images: int = Field(description="The job's detected images (or video frames) that were scored.")
    images_without_labels: int = Field(
        description="Scored images (or frames) no label named: counted as holding no object"
        " (YOLO's convention for background images)."
    )
    frames_outside_labels: int = Field(
        default=0,
        description="A video job's sampled frames before the first or after the last frame"
        " the labels cover: not labelled, so not scored.",
    )
    unmatched_labels: list[str] = Field(
        description="Label entries that name no image of the job (the first 20)."
    )
    unmatched_label_count: int
    unknown_classes: list[str] = Field(
        description="Class names in the labels the model lacks; their boxes were not scored."
    )
    ground_truth: int = Field(description="Labelled objects scored.")
    detections: int = Field(description="Detected objects scored.")
    map50_95: float = Field(description="COCO mAP over IoU 0.50 to 0.95.")
    map50: float
    map75: float
    precision: float | None = Field(
        description="At IoU 0.5 over every class; null without detections."
    )
    recall: float | None = Field(
        description="At IoU 0.5 over every class; null without ground truth."
    )
    f1: float | None = Field(description="The best F1 at IoU 0.5 over every class.")
    f1_confidence: float | None = Field(description="The one threshold that reaches `f1`.")
    suggested_class_confidence: dict[str, float] = Field(
        description="Each class's `f1_confidence` by name, in the shape the detect routes'"
        " `class_confidence` takes: the thresholds for the best F1 on these images."
    )
    classes: list[ClassEvaluationOut] = Field(
        description="Every class with ground truth or detections, by class id."
    )
    confusions: list[ConfusionOut] = Field(
        description="The confusion matrix's cells that are not zero, the most frequent first:"
        " labelled class by detected class, null for nothing on either side."
    )
    curve: list[CurvePointOut] = Field(
        description="Precision, recall and F1 by threshold over every class (micro): the"
        " trade-off to pick one threshold from."
    )
    sizes: list[SizeEvaluationOut] = Field(
        description="mAP50-95 by object size (small, medium, large): low on small objects"
        " alone, a tiled detection (`tile_size`) may find what the model's input size loses."
    )
    tracking: TrackingEvaluationOut | None = Field(
        default=None,
        description="A tracked video job (`track=true`) against labels with identities"
        " (MOTChallenge's gt.txt): MOTA, IDF1 and the rest over every class; null otherwise.",
    )

    @classmethod
    def from_proto(cls, evaluation: detection_pb2.JobEvaluation) -> Self:
        labels_format: LabelsFormat = (
            "coco"
            if evaluation.labels_format == "coco"
            else "mot"
            if evaluation.labels_format == "mot"
            else "yolo"
        )
        return cls(
            job_id=evaluation.job_id,
            job_kind="video" if evaluation.job_kind == "video" else "batch",
            model=evaluation.model,
            labels_format=labels_format,
            min_confidence=evaluation.min_confidence,
            images=evaluation.images,
            images_without_labels=evaluation.images_without_labels,
            frames_outside_labels=evaluation.frames_outside_labels,
            unmatched_labels=list(evaluation.unmatched_labels),
            unmatched_label_count=evaluation.unmatched_label_count,
            unknown_classes=list(evaluation.unknown_classes),
            ground_truth=evaluation.ground_truth,
            detections=evaluation.detections,
            map50_95=evaluation.map50_95,
            map50=evaluation.map50,
            map75=evaluation.map75,
            precision=_optional(evaluation, "precision"),
            recall=_optional(evaluation, "recall"),
            f1=_optional(evaluation, "f1"),
            f1_confidence=_optional(evaluation, "f1_confidence"),
            # Sent as float32: back to the 4 decimals the service chose.
            suggested_class_confidence={
                name: round(value, 4)
                for name, value in evaluation.suggested_class_confidence.items()
            },
            classes=[ClassEvaluationOut.from_proto(row) for row in evaluation.classes],
            confusions=[ConfusionOut.from_proto(cell) for cell in evaluation.confusions],
            curve=CurvePointOut.of(evaluation.curve),
            sizes=[SizeEvaluationOut.from_proto(row) for row in evaluation.sizes],
            tracking=TrackingEvaluationOut.from_proto(evaluation),
        )
