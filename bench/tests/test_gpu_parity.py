"""How the device script compares the GPU's answers with the CPU pipeline's: what counts as
the same object, and what a miss records so that a run on the device explains it."""

import numpy as np

from bench.gpu_encoded import compare

BUS = [10.0, 10.0, 110.0, 60.0, 0.9, 5.0]
PERSON = [200.0, 50.0, 230.0, 130.0, 0.6, 0.0]
FAINT_PERSON = [300.0, 40.0, 320.0, 90.0, 0.26, 0.0]


def test_same_class_boxes_that_overlap_and_agree_in_confidence_match() -> None:
    reference = np.array([BUS, PERSON])
    served = np.array([[10.5, 10.0, 110.0, 60.5, 0.88, 5.0], [200, 50, 230, 131, 0.62, 0]])
    assert compare(reference, served) == (2, [])


def test_a_missing_object_is_recorded_with_no_nearest_box() -> None:
    matched, misses = compare(np.array([BUS, FAINT_PERSON]), np.array([BUS]))
    assert matched == 1
    assert misses == [
        {"reference": [300.0, 40.0, 320.0, 90.0, 0.26, 0.0], "nearest_served": None, "iou": None}
    ]


def test_a_moved_box_or_a_changed_confidence_is_a_miss_with_its_nearest_box() -> None:
    moved = [200.0, 60.0, 230.0, 140.0, 0.6, 0.0]
    matched, misses = compare(np.array([PERSON]), np.array([moved]))
    assert matched == 0
    assert misses[0]["nearest_served"] == moved
    assert 0.7 < misses[0]["iou"] < 0.9

    unsure = [200.0, 50.0, 230.0, 130.0, 0.5, 0.0]
    matched, misses = compare(np.array([PERSON]), np.array([unsure]))
    assert (matched, misses[0]["iou"]) == (0, 1.0)


def test_each_served_box_answers_one_reference_object_and_only_of_its_class() -> None:
    twin = [10.0, 10.0, 110.0, 60.0, 0.89, 5.0]
    other_class = [10.0, 10.0, 110.0, 60.0, 0.9, 7.0]
    matched, misses = compare(np.array([BUS, twin]), np.array([BUS, other_class]))
    assert matched == 1
    # the twin's nearest is the box the first reference object already took
    assert misses[0]["nearest_served"] == BUS
