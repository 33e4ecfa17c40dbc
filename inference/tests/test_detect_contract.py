"""The encoded-image contract's pure parts: letterbox geometry, selection and NMS, packing.

Both pipelines (CPU and GPU) and the detection service rely on these; no servers.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from objectvision_inference.cpu_pipeline import letterbox
from objectvision_inference.detect_contract import (
    INPUT_SIZE,
    PAD_VALUE,
    STATUS_OK,
    STATUS_UNDECODABLE,
    ImageOptions,
    ImageResult,
    Letterbox,
    box_iou,
    expected_sizes,
    nms,
    pack,
    request_options,
    select,
    size_matches,
    to_original,
    unpack,
)


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


def _options(
    confidence: float, iou: float, max_detections: int, class_ids: frozenset[int] | None
) -> ImageOptions:
    mask = None
    if class_ids is not None:
        mask = np.zeros(3, dtype=bool)
        mask[list(class_ids)] = True
    return ImageOptions(confidence, iou, max_detections, mask)


def _class_ids(options: ImageOptions) -> set[int] | None:
    if options.class_mask is None:
        return None
    return {int(i) for i in np.flatnonzero(options.class_mask)}


options_strategy = st.builds(
    _options,
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
    if options.class_mask is not None:
        assert set(kept[:, 5].astype(int).tolist()) <= _class_ids(options)
    # No two kept boxes of one class overlap more than the IoU threshold.
    for i in range(len(kept)):
        same = kept[i + 1 :][kept[i + 1 :, 5] == kept[i, 5]]
        if len(same):
            assert (box_iou(kept[i, :4], same[:, :4]) <= options.iou + 1e-6).all()
    # Nothing was dropped for no reason: each eligible dropped row overlaps a kept one of its
    # class by more than the threshold (unless the cap cut the list short).
    if len(kept) < options.max_detections:
        eligible = rows[(rows[:, 4] >= options.confidence) & (rows[:, 4] > 0)]
        if options.class_mask is not None:
            eligible = eligible[np.isin(eligible[:, 5], sorted(_class_ids(options)))]
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
    kept = select(same_box, ImageOptions(confidence=0.25, iou=0.7, max_detections=300))
    assert kept[:, 5].tolist() == [0, 1]


def test_nms_drops_only_overlaps_above_the_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 15, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    # IoU(0, 2) = 50 / 150 = 1/3.
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]
    assert nms(boxes, scores, 0.3).tolist() == [0]
    assert nms(boxes, scores, 1.0).tolist() == [0, 1, 2]


def test_kept_rows_come_back_in_original_pixels():
    box = Letterbox.fit(810, 1080)
    kept = np.array([[80, 0, 560, 640, 0.9, 5], [70, -3, 600, 700, 0.5, 99]], dtype=np.float32)
    bus, clipped = to_original(kept, box)
    assert bus[:4] == pytest.approx((0, 0, 810, 1080), abs=1e-3)
    assert bus[4:].tolist() == pytest.approx([0.9, 5])
    assert clipped[:4] == pytest.approx((0, 0, 810, 1080))


def test_a_request_packs_and_unpacks_to_the_same_answers():
    rows = np.array([[1, 2, 3, 4, 0.9, 0], [5, 6, 7, 8, 0.8, 2]], dtype=np.float32)
    results = [
        ImageResult(STATUS_OK, 640, 480, rows),
        ImageResult.refused(STATUS_UNDECODABLE),
        ImageResult(STATUS_OK, 10, 20, rows[:1]),
    ]
    back = unpack(pack(results, (1.0, 2.0, 3.0)))
    assert [(r.status, r.width, r.height, len(r.rows)) for r in back] == [
        (STATUS_OK, 640, 480, 2),
        (STATUS_UNDECODABLE, 0, 0, 0),
        (STATUS_OK, 10, 20, 1),
    ]
    np.testing.assert_array_equal(back[0].rows, rows)
    assert back[2].stage_ms == (1.0, 2.0, 3.0)


def test_zero_or_absent_options_mean_the_model_defaults():
    defaults = ImageOptions(confidence=0.25, iou=0.7, max_detections=300)
    first, second = request_options(
        2,
        defaults,
        confidence=np.array([[0.0], [0.6]], dtype=np.float32),
        max_detections=np.array([[5], [0]], dtype=np.int32),
        class_mask=np.array([[True] * 3, [True, False, False]]),
    )
    assert (first.confidence, first.iou, first.max_detections) == (0.25, 0.7, 5)
    assert first.class_mask is None
    assert (second.confidence, second.max_detections) == (pytest.approx(0.6), 300)
    assert second.class_mask.tolist() == [True, False, False]
    assert expected_sizes(2, np.array([[810, 1080], [0, 0]])) == [(810, 1080), None]


def test_a_decoded_size_matches_its_header_either_way_round():
    assert size_matches((810, 1080), 810, 1080)
    assert size_matches((810, 1080), 1080, 810)
    assert not size_matches((16, 16), 12000, 12000)
    assert size_matches(None, 5, 5)


def test_letterbox_geometry_follows_the_readme():
    bus = Letterbox.fit(810, 1080)
    assert bus.scale == pytest.approx(640 / 1080)
    assert (bus.new_width, bus.new_height, bus.left, bus.top) == (480, 640, 80, 0)
    zidane = Letterbox.fit(1280, 720)
    assert (zidane.new_width, zidane.new_height, zidane.left, zidane.top) == (640, 360, 0, 140)


@given(width=st.integers(1, 3000), height=st.integers(1, 3000))
@settings(max_examples=40, deadline=None)
def test_letterbox_places_the_image_where_its_geometry_says(width, height):
    white = np.full((height, width, 3), 255, dtype=np.uint8)
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    box = letterbox(white, canvas)
    assert canvas.shape == (INPUT_SIZE, INPUT_SIZE, 3) and canvas.dtype == np.uint8
    inside = canvas[box.top : box.top + box.new_height, box.left : box.left + box.new_width]
    assert (inside == 255).all()
    outside = canvas.copy()
    outside[box.top : box.top + box.new_height, box.left : box.left + box.new_width] = PAD_VALUE
    assert (outside == PAD_VALUE).all()


def test_letterbox_converts_bgr_to_rgb():
    blue = np.zeros((100, 100, 3), dtype=np.uint8)
    blue[..., 0] = 255
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    letterbox(blue, canvas)
    assert tuple(canvas[320, 320]) == (0, 0, 255)


@given(
    width=st.integers(1, 8000),
    height=st.integers(1, 8000),
    corners=st.lists(st.floats(0, 1), min_size=4, max_size=4),
)
@settings(max_examples=200, deadline=None)
def test_boxes_survive_the_round_trip_through_the_model_input(width, height, corners):
    box = Letterbox.fit(width, height)
    x1, x2 = sorted((corners[0] * width, corners[1] * width))
    y1, y2 = sorted((corners[2] * height, corners[3] * height))
    original = np.array([[x1, y1, x2, y2]], dtype=np.float32)
    offset = np.array([box.left, box.top, box.left, box.top], dtype=np.float32)
    back = box.to_original(original * np.float32(box.scale) + offset)
    # float32 arithmetic: a hundredth of a pixel even for 8000-pixel images.
    np.testing.assert_allclose(back, original, atol=1e-2)


@given(width=st.integers(1, 8000), height=st.integers(1, 8000))
@settings(max_examples=100, deadline=None)
def test_the_whole_input_maps_to_the_whole_image_and_clips(width, height):
    box = Letterbox.fit(width, height)
    mapped = box.to_original(np.array([[-50, -50, INPUT_SIZE + 50, INPUT_SIZE + 50]]))
    np.testing.assert_allclose(mapped, [[0, 0, width, height]])
    content = np.array(
        [[box.left, box.top, box.left + box.new_width, box.top + box.new_height]], dtype=np.float32
    )
    # round(w * r) differs from w * r by at most half a model pixel, i.e. 0.5 / r image pixels.
    np.testing.assert_allclose(
        box.to_original(content), [[0, 0, width, height]], atol=0.5 / box.scale + 1e-3
    )
