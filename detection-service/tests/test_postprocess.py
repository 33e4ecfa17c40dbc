"""Selection of the served model's candidate rows: confidence, classes, per-class NMS, cap."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from detection_service.imaging.letterbox import Letterbox
from detection_service.postprocess import DetectionOptions, box_iou, nms, select, to_objects


@st.composite
def candidate_rows(draw: st.DrawFn) -> np.ndarray:
    """[K, 6] rows as the served model returns them: sorted by score, zero-score padding."""
    n = draw(st.integers(0, 40))
    coords = draw(hnp.arrays(np.float32, (n, 4), elements=st.floats(0, 640, width=32)))
    x1, x2 = np.minimum(coords[:, 0], coords[:, 2]), np.maximum(coords[:, 0], coords[:, 2])
    y1, y2 = np.minimum(coords[:, 1], coords[:, 3]), np.maximum(coords[:, 1], coords[:, 3])
    scores = draw(hnp.arrays(np.float32, (n,), elements=st.floats(0.0625, 1, width=32)))
    classes = draw(hnp.arrays(np.float32, (n,), elements=st.sampled_from([0.0, 1.0, 2.0])))
    rows = np.stack([x1, y1, x2, y2, scores, classes], axis=1).reshape(n, 6)
    rows = rows[np.argsort(-rows[:, 4], kind="stable")]
    padding = np.zeros((draw(st.integers(0, 5)), 6), dtype=np.float32)
    return np.concatenate([rows, padding]).astype(np.float32)


options_strategy = st.builds(
    DetectionOptions,
    confidence=st.floats(0.01, 1),
    iou=st.floats(0.05, 1),
    max_detections=st.integers(1, 50),
    class_ids=st.one_of(st.none(), st.frozensets(st.sampled_from([0, 1, 2]), min_size=1)),
)


def _contains(rows: np.ndarray, row: np.ndarray) -> bool:
    return bool((rows == row).all(axis=1).any())


@given(rows=candidate_rows(), options=options_strategy)
@settings(max_examples=300, deadline=None)
def test_nms_invariants(rows, options):
    kept = select(rows, options)
    # Only real candidates that pass the thresholds, best first, at most the cap.
    assert len(kept) <= options.max_detections
    assert all(_contains(rows, row) for row in kept)
    assert (kept[:, 4] >= options.confidence).all() and (kept[:, 4] > 0).all()
    assert (np.diff(kept[:, 4]) <= 0).all()
    if options.class_ids is not None:
        assert set(kept[:, 5].astype(int).tolist()) <= options.class_ids
    # No two kept boxes of one class overlap more than the IoU threshold.
    for i in range(len(kept)):
        same = kept[i + 1 :][kept[i + 1 :, 5] == kept[i, 5]]
        if len(same):
            assert (box_iou(kept[i, :4], same[:, :4]) <= options.iou + 1e-6).all()
    # Nothing was dropped for no reason: each eligible dropped row overlaps a kept one of its
    # class by more than the threshold (unless the cap cut the list short).
    if len(kept) < options.max_detections:
        eligible = rows[(rows[:, 4] >= options.confidence) & (rows[:, 4] > 0)]
        if options.class_ids is not None:
            eligible = eligible[np.isin(eligible[:, 5], list(options.class_ids))]
        for row in eligible:
            if _contains(kept, row):
                continue
            rivals = kept[(kept[:, 5] == row[5]) & (kept[:, 4] >= row[4])]
            assert len(rivals) and (box_iou(row[:4], rivals[:, :4]) > options.iou - 1e-6).any()


@given(rows=candidate_rows(), options=options_strategy)
@settings(max_examples=100, deadline=None)
def test_selection_is_idempotent(rows, options):
    once = select(rows, options)
    np.testing.assert_array_equal(select(once, options), once)


def test_classes_never_suppress_each_other():
    same_box = np.array(
        [[10, 10, 100, 100, 0.9, 0], [10, 10, 100, 100, 0.8, 1], [12, 12, 100, 100, 0.7, 0]],
        dtype=np.float32,
    )
    kept = select(same_box, DetectionOptions(confidence=0.25, iou=0.7, max_detections=300))
    assert kept[:, 5].tolist() == [0, 1]


def test_nms_drops_only_overlaps_above_the_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 15, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    # IoU(0, 2) = 50 / 150 = 1/3.
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]
    assert nms(boxes, scores, 0.3).tolist() == [0]
    assert nms(boxes, scores, 1.0).tolist() == [0, 1, 2]


def test_objects_are_in_original_pixels_with_names():
    box = Letterbox.fit(810, 1080)
    kept = np.array([[80, 0, 560, 640, 0.9, 5], [70, -3, 600, 700, 0.5, 99]], dtype=np.float32)
    bus, unknown = to_objects(kept, box, ["person"] * 5 + ["bus"])
    assert (bus.class_name, bus.class_id) == ("bus", 5)
    assert (bus.x1, bus.y1, bus.x2, bus.y2) == pytest.approx((0, 0, 810, 1080), abs=1e-3)
    assert unknown.class_name == "99"
    assert (unknown.x1, unknown.y1, unknown.x2, unknown.y2) == pytest.approx((0, 0, 810, 1080))
