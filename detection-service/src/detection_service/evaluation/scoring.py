"""COCO's detection metrics over a job's images, by supervision's implementation.

mAP is the mean over classes with ground truth of the area under the 101-point interpolated
precision-recall curve, at IoU 0.50 to 0.95 in steps of 0.05 (mAP50-95), at 0.50 and at 0.75;
a class only detected, never labelled, has no AP and is left out of the mean (pycocotools
does the same). Precision and recall are at IoU 0.5, over every detection the job kept:
micro-averaged overall (every object counts once), and per class.

The confusions: every (labelled class, detected class) pair matched at IoU 0.5 and how often,
with "nothing" on either side for a missed object or a detection where nothing was labelled
(supervision's ConfusionMatrix), so a cat answered as a dog shows as such, not only as a miss
and a false detection.

The operating point: the confidence threshold at which F1 (at IoU 0.5) is highest, per class
and overall, is what a caller would set as that class's `class_confidence` (ADR 0050). As in
Ultralytics' F1-confidence curve, detections are matched to labels once (supervision's greedy
highest-IoU matching) and the threshold swept over their scores.

By size: COCO's mAP50-95 over the labelled objects of each size apart (small under 32 x 32
pixels, medium to 96 x 96, large above, by box area in the uploaded image's pixels), which says
whether a model's misses are the small objects that a tiled detection (ADR 0051) would find.

The curve: the same sweep on a grid of thresholds (the job's lowest, then every hundredth
above it), each point the precision, recall and F1 of keeping the detections scoring at
least its confidence, per class and overall: Ultralytics' P, R and F1 against confidence and
the precision-recall trade-off, in one list a client can draw and pick a threshold from.
Points that keep the same detections as the one before are left out, so a point holds until
the next one's confidence, and a class of a few detections has a few points.

CPU-bound (IoU matrices, sorting): callers run `score` in a worker thread.
"""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import supervision as sv
from supervision.metrics import (
    AveragingMethod,
    MeanAveragePrecision,
    MeanAveragePrecisionResult,
    Precision,
    Recall,
)

from detection_service.evaluation.labels import LabelBox
from detection_service.pipeline.types import DetectedObject


@dataclass(frozen=True)
class ScoredImage:
    """One image's labelled objects (boxes in pixels) beside what the job detected in it."""

    truth: Sequence[LabelBox]
    detected: Sequence[DetectedObject]


@dataclass(frozen=True)
class OperatingPoint:
    """The best F1 at IoU 0.5, and the score a detection needs to be kept to reach it."""

    f1: float
    confidence: float


@dataclass(frozen=True)
class CurvePoint:
    """Keeping the detections scoring at least `confidence`: their precision, recall and F1
    at IoU 0.5."""

    confidence: float
    precision: float
    recall: float
    f1: float


# The curve's thresholds above the job's own: every hundredth (at most 100 points).
CURVE_STEP = 0.01

# COCO's object sizes by box area in pixels, as supervision and pycocotools bound them.
SMALL_AREA, LARGE_AREA = 32**2, 96**2
SIZES = ("small", "medium", "large")


@dataclass(frozen=True)
class SizeScores:
    """COCO's mAP50-95 over the labelled objects of one size; None without any of it."""

    size: str
    ground_truth: int
    map50_95: float | None


def object_size(box: LabelBox) -> str:
    area = (box.x2 - box.x1) * (box.y2 - box.y1)
    return "small" if area < SMALL_AREA else "medium" if area < LARGE_AREA else "large"


@dataclass(frozen=True)
class ClassScores:
    class_id: int
    class_name: str
    ground_truth: int
    detections: int
    # None where undefined: AP and recall without ground truth, precision without detections.
    ap50_95: float | None
    ap50: float | None
    precision: float | None
    recall: float | None
    # None without ground truth or without a correct detection.
    best: OperatingPoint | None = None
    # Empty without ground truth or without detections.
    curve: list[CurvePoint] = field(default_factory=list)


@dataclass(frozen=True)
class Confusion:
    """How many labelled objects of class `actual` were answered as class `predicted`;
    None as `actual`: detections where nothing was labelled; as `predicted`: objects missed."""

    actual: int | None
    predicted: int | None
    count: int


@dataclass(frozen=True)
class Scores:
    ground_truth: int
    detections: int
    map50_95: float
    map50: float
    map75: float
    precision: float | None
    recall: float | None
    classes: list[ClassScores]
    best: OperatingPoint | None = None
    confusions: list[Confusion] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    sizes: list[SizeScores] = field(default_factory=list)


def _truth(boxes: Sequence[LabelBox]) -> sv.Detections:
    if not boxes:
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=np.array([(box.x1, box.y1, box.x2, box.y2) for box in boxes], dtype=np.float64),
        class_id=np.array([box.class_id for box in boxes], dtype=np.int64),
    )


def _detected(objects: Sequence[DetectedObject]) -> sv.Detections:
    if not objects:
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=np.array([(obj.x1, obj.y1, obj.x2, obj.y2) for obj in objects], dtype=np.float64),
        class_id=np.array([obj.class_id for obj in objects], dtype=np.int64),
        confidence=np.array([obj.confidence for obj in objects], dtype=np.float64),
    )


def _by_class(classes: np.ndarray, values: np.ndarray) -> dict[int, np.ndarray]:
    """Row `i` of `values` (one column per IoU threshold) is class `classes[i]`'s."""
    return {int(class_id): row for class_id, row in zip(classes, values, strict=True)}


@dataclass(frozen=True)
class _Outcome:
    """One detection's class and score, and whether it matched a label at IoU 0.5."""

    class_id: int
    confidence: float
    correct: bool


def _outcomes(
    images: Sequence[ScoredImage],
    targets: Sequence[sv.Detections],
    predictions: Sequence[sv.Detections],
) -> list[_Outcome]:
    outcomes: list[_Outcome] = []
    for image, truth, detected in zip(images, targets, predictions, strict=True):
        matched: set[int] = set()
        if len(truth) and len(detected):
            pairs, _, _ = sv.match_detections(detected, truth, iou_threshold=0.5)
            matched = {int(index) for index in pairs[:, 0]}
        outcomes.extend(
            _Outcome(obj.class_id, obj.confidence, index in matched)
            for index, obj in enumerate(image.detected)
        )
    return outcomes


def _ranked(outcomes: Sequence[_Outcome]) -> tuple[np.ndarray, np.ndarray]:
    """The scores, highest first, and how many of the detections up to each are correct:
    keeping the first k is what a threshold at the k-th score keeps (with its ties)."""
    confidences = np.array([outcome.confidence for outcome in outcomes])
    order = np.argsort(-confidences, kind="stable")
    return confidences[order], np.cumsum([outcomes[index].correct for index in order])


def best_operating_point(outcomes: Sequence[_Outcome], labelled: int) -> OperatingPoint | None:
    """The threshold (keep the detections scoring at least it) with the highest F1, the
    higher threshold on a tie; None without labels or without a correct detection."""
    if not labelled or not any(outcome.correct for outcome in outcomes):
        return None
    confidences, correct = _ranked(outcomes)
    kept = np.arange(1, len(confidences) + 1)
    f1 = 2 * correct / (kept + labelled)  # 2PR / (P + R), with P = c / kept, R = c / labelled
    # A threshold keeps every detection of a tied score or none: only the last of a tie cuts.
    cuts = np.flatnonzero(np.append(confidences[1:] < confidences[:-1], True))
    best = int(cuts[np.argmax(f1[cuts])])
    return OperatingPoint(f1=float(f1[best]), confidence=float(confidences[best]))


def threshold_curve(outcomes: Sequence[_Outcome], labelled: int, lowest: float) -> list[CurvePoint]:
    """Precision, recall and F1 at the thresholds from `lowest` (the job's: everything it
    kept) up in steps of CURVE_STEP, while one keeps a detection; a point that keeps what the
    one before it kept is left out. Empty without labels or without detections."""
    if not labelled or not outcomes:
        return []
    descending, correct_so_far = _ranked(outcomes)
    steps = np.arange(math.floor(lowest / CURVE_STEP) + 1, round(1 / CURVE_STEP) + 1)
    thresholds = [lowest, *(round(float(step) * CURVE_STEP, 6) for step in steps)]
    points: list[CurvePoint] = []
    previous = 0
    for threshold in thresholds:
        # Scores are descending: those at or above the threshold are a prefix.
        kept = int(np.searchsorted(-descending, -threshold, side="right"))
        if kept == 0:
            break
        if kept == previous:
            continue
        previous, correct = kept, int(correct_so_far[kept - 1])
        points.append(
            CurvePoint(
                confidence=threshold,
                precision=correct / kept,
                recall=correct / labelled,
                f1=2 * correct / (kept + labelled),
            )
        )
    return points


def _confusions(
    targets: Sequence[sv.Detections], predictions: Sequence[sv.Detections], class_count: int
) -> list[Confusion]:
    """The confusion matrix's cells that are not zero, the most frequent first."""
    matrix = sv.ConfusionMatrix.from_detections(
        predictions=list(predictions),
        targets=list(targets),
        classes=[str(class_id) for class_id in range(class_count)],
        conf_threshold=0.0,  # every detection the job kept
        iou_threshold=0.5,
    ).matrix
    nothing = class_count  # the last row and column: no label, no detection

    def named(index: int) -> int | None:
        return None if index == nothing else index

    cells = [
        Confusion(named(int(actual)), named(int(predicted)), int(matrix[actual, predicted]))
        for actual, predicted in zip(*np.nonzero(matrix), strict=True)
    ]
    return sorted(
        cells,
        key=lambda cell: (
            -cell.count,
            nothing if cell.actual is None else cell.actual,
            nothing if cell.predicted is None else cell.predicted,
        ),
    )


def score(
    images: Sequence[ScoredImage], class_names: Sequence[str], *, lowest: float = 0.0
) -> Scores:
    """The metrics of `images`, whose detections were kept from the score `lowest` up; at
    least one of them must hold ground truth."""
    targets = [_truth(image.truth) for image in images]
    predictions = [_detected(image.detected) for image in images]
    truth_counts = Counter(box.class_id for image in images for box in image.truth)
    detected_counts = Counter(obj.class_id for image in images for obj in image.detected)
    average_precision = MeanAveragePrecision().update(predictions, targets).compute()
    precision = Precision(averaging_method=AveragingMethod.MICRO).update(predictions, targets)
    recall = Recall(averaging_method=AveragingMethod.MICRO).update(predictions, targets)
    precision_result, recall_result = precision.compute(), recall.compute()
    outcomes = _outcomes(images, targets, predictions)

    ap_rows = _by_class(average_precision.matched_classes, average_precision.ap_per_class)
    precision_rows = _by_class(
        precision_result.matched_classes, precision_result.precision_per_class
    )
    recall_rows = _by_class(recall_result.matched_classes, recall_result.recall_per_class)

    def at_50(rows: dict[int, np.ndarray], class_id: int) -> float:
        row = rows.get(class_id)
        return float(row[0]) if row is not None else 0.0

    classes = []
    for class_id in sorted(truth_counts.keys() | detected_counts.keys()):
        labelled, detected = truth_counts[class_id], detected_counts[class_id]
        # A labelled class nothing was detected of has an AP of 0.
        ap_row = ap_rows.get(class_id, np.zeros(len(average_precision.iou_thresholds)))
        of_class = [outcome for outcome in outcomes if outcome.class_id == class_id]
        classes.append(
            ClassScores(
                class_id=class_id,
                class_name=class_names[class_id],
                ground_truth=labelled,
                detections=detected,
                ap50_95=float(ap_row.mean()) if labelled else None,
                ap50=float(ap_row[0]) if labelled else None,
                precision=at_50(precision_rows, class_id) if detected else None,
                recall=at_50(recall_rows, class_id) if labelled else None,
                best=best_operating_point(of_class, labelled),
                curve=threshold_curve(of_class, labelled, lowest),
            )
        )
    ground_truth, detections = sum(truth_counts.values()), sum(detected_counts.values())
    return Scores(
        ground_truth=ground_truth,
        detections=detections,
        map50_95=float(average_precision.map50_95),
        map50=float(average_precision.map50),
        map75=float(average_precision.map75),
        precision=float(precision_result.precision_at_50) if detections else None,
        recall=float(recall_result.recall_at_50) if ground_truth else None,
        classes=classes,
        best=best_operating_point(outcomes, ground_truth),
        confusions=_confusions(targets, predictions, len(class_names)),
        curve=threshold_curve(outcomes, ground_truth, lowest),
        sizes=_by_size(images, average_precision),
    )


def _by_size(
    images: Sequence[ScoredImage], average_precision: MeanAveragePrecisionResult
) -> list[SizeScores]:
    """supervision's mAP of each size, None (it says -1) where no object of it is labelled
    (supervision leaves a size's result unset only when it scored no size at all)."""
    labelled = Counter(object_size(box) for image in images for box in image.truth)
    results = {
        "small": average_precision.small_objects,
        "medium": average_precision.medium_objects,
        "large": average_precision.large_objects,
    }

    def of(size: str) -> float | None:
        result = results[size]
        return float(result.map50_95) if labelled[size] and result is not None else None

    return [SizeScores(size=size, ground_truth=labelled[size], map50_95=of(size)) for size in SIZES]
