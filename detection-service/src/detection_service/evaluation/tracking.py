"""How well a tracked video job kept each object's identity: the CLEAR MOT and identity
metrics, by py-motmetrics, over the frames the job sampled.

MOTChallenge's definitions: a labelled object and a tracked detection of its class are matched
in a frame at IoU 0.5 or more, keeping last frame's pairs where they still overlap (so a
switch is counted only when a track really changes hands). MOTA is 1 less the misses, false
detections and identity switches per labelled object (it goes below 0 when those outnumber
the objects); MOTP the mean IoU of the matched pairs; IDF1 the F1 of the one best assignment
of whole tracks to whole labelled identities (how long each object kept one id). Mostly
tracked: objects matched in at least 80% of the frames they were labelled in; mostly lost:
under 20%.

Only detections with a track id take part: before its track is confirmed (its first sampled
frame) an object has none and, for these metrics, was not tracked yet. Frames are the
sampled ones: identities are followed from sampled frame to sampled frame, as the job did.

Classes are matched apart (one accumulator each, a person never matches a car's label); the
figures over every class are the summed counts' (motmetrics' "OVERALL"). motmetrics' own IoU
helper is not used: it calls `np.asfarray`, which NumPy 2 removed; supervision's IoU is.
motmetrics and pandas are imported when a job's tracking is scored, not with the service:
they cost start-up time that serving never needs.

CPU-bound: callers run `score_tracking` in a worker thread.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import supervision as sv

from detection_service.evaluation.labels import LabelBox
from detection_service.pipeline.types import DetectedObject

MATCH_IOU = 0.5
_METRICS = (
    "mota",
    "motp",
    "idf1",
    "idp",
    "idr",
    "num_switches",
    "num_fragmentations",
    "num_unique_objects",
    "mostly_tracked",
    "partially_tracked",
    "mostly_lost",
    "num_false_positives",
    "num_misses",
    "num_objects",
)
_OVERALL = "OVERALL"


@dataclass(frozen=True)
class TrackedFrame:
    """One sampled frame: its labelled objects (with their ids) and what the job tracked."""

    frame_index: int
    truth: Sequence[LabelBox]
    detected: Sequence[DetectedObject]


@dataclass(frozen=True)
class TrackingScores:
    mota: float
    # Mean IoU of the matched pairs; None without any match.
    motp: float | None
    idf1: float
    id_precision: float
    id_recall: float
    id_switches: int
    fragmentations: int
    # Labelled identities, and how many were tracked for most, part or little of their frames.
    ground_truth_tracks: int
    mostly_tracked: int
    partially_tracked: int
    mostly_lost: int
    false_positives: int
    misses: int


@dataclass(frozen=True)
class TrackingEvaluation:
    overall: TrackingScores
    # By class id, for the classes with labelled objects.
    classes: dict[int, TrackingScores]


def score_tracking(frames: Sequence[TrackedFrame]) -> TrackingEvaluation | None:
    """The metrics over `frames` (in frame order); None when no frame has a labelled object."""
    # Imported here, not with the module: see its docstring.
    import motmetrics

    labelled = {box.class_id for frame in frames for box in frame.truth}
    if not labelled:
        return None
    tracked = {
        obj.class_id for frame in frames for obj in frame.detected if obj.track_id is not None
    }
    class_ids = sorted(labelled | tracked)
    accumulators = {class_id: motmetrics.MOTAccumulator() for class_id in class_ids}
    for frame in frames:
        for class_id, accumulator in accumulators.items():
            truth = [box for box in frame.truth if box.class_id == class_id]
            detected = [
                obj
                for obj in frame.detected
                if obj.class_id == class_id and obj.track_id is not None
            ]
            # A frame with nothing of the class changes none of its counts: left out, so that
            # the updates (half a millisecond each) are bounded by the objects scored, not by
            # frames times classes.
            if not truth and not detected:
                continue
            accumulator.update(
                [box.track_id for box in truth],
                [obj.track_id for obj in detected],
                _distances(truth, detected),
                frameid=frame.frame_index,
            )
    host = motmetrics.metrics.create()
    summary = host.compute_many(
        list(accumulators.values()),
        metrics=list(_METRICS),
        names=[str(class_id) for class_id in class_ids],
        generate_overall=True,
    )
    rows: dict[str, dict[str, Any]] = summary.to_dict("index")
    return TrackingEvaluation(
        overall=_scores(rows[_OVERALL]),
        classes={class_id: _scores(rows[str(class_id)]) for class_id in sorted(labelled)},
    )


def _distances(truth: Sequence[LabelBox], detected: Sequence[DetectedObject]) -> np.ndarray:
    """1 - IoU for each (label, detection) pair, NaN where they overlap under MATCH_IOU (no
    match possible), as motmetrics takes it."""
    if not truth or not detected:
        return np.empty((len(truth), len(detected)))
    iou = sv.box_iou_batch(
        np.array([(box.x1, box.y1, box.x2, box.y2) for box in truth], dtype=np.float64),
        np.array([(obj.x1, obj.y1, obj.x2, obj.y2) for obj in detected], dtype=np.float64),
    )
    return np.where(iou >= MATCH_IOU, 1.0 - iou, np.nan)


def _number(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def _scores(row: dict[str, Any]) -> TrackingScores:
    motp = _number(row["motp"])
    return TrackingScores(
        mota=_number(row["mota"]) or 0.0,
        motp=None if motp is None else 1.0 - motp,
        idf1=_number(row["idf1"]) or 0.0,
        id_precision=_number(row["idp"]) or 0.0,
        id_recall=_number(row["idr"]) or 0.0,
        id_switches=int(row["num_switches"]),
        fragmentations=int(row["num_fragmentations"]),
        ground_truth_tracks=int(row["num_unique_objects"]),
        mostly_tracked=int(row["mostly_tracked"]),
        partially_tracked=int(row["partially_tracked"]),
        mostly_lost=int(row["mostly_lost"]),
        false_positives=int(row["num_false_positives"]),
        misses=int(row["num_misses"]),
    )
