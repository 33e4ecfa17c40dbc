"""Ground-truth labels and the metrics a job is scored by (detection_service.evaluation).

The metrics are checked against pycocotools' COCOeval, the reference every detection paper
reports, on a scene of jittered, missed and spurious boxes; the labels readers on files
built here, including the malformed and hostile ones a caller may send. The end-to-end path
through the gateway is tests/test_evaluation.py.
"""

import contextlib
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detection_service.evaluation.labels import (
    COCO as COCO_FORMAT,
)
from detection_service.evaluation.labels import (
    MAX_UNPACKED_BYTES,
    YOLO,
    LabelBox,
    parse_labels,
)
from detection_service.evaluation.scoring import ScoredImage, score
from detection_service.evaluation.service import (
    MAX_SCORED_OBJECTS,
    JobEvaluation,
    evaluate_records,
)
from detection_service.history.service import DetectionRecord
from detection_service.pipeline.types import DetectedObject, DetectionOptions
from objectvision_common.errors import InvalidArgument
from objectvision_inference.class_names import COCO_CLASS_NAMES

NAMES = ("person", "bicycle", "car", "dog", "bus")


def _zip(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _coco(**overrides: Any) -> bytes:
    document: dict[str, Any] = {
        "images": [{"id": 1, "file_name": "val/street.jpg", "width": 640, "height": 480}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 20, 100, 50], "iscrowd": 0}
        ],
        "categories": [{"id": 7, "name": "Car"}],
    }
    document.update(overrides)
    return json.dumps(document).encode()


def _refusal(data: bytes, model_classes: tuple[str, ...] = NAMES) -> str:
    with pytest.raises(InvalidArgument) as refused:
        parse_labels(data, model_classes)
    return str(refused.value)


# Metrics


def _scene(seed: int) -> tuple[list[ScoredImage], list[dict[str, Any]], list[dict[str, Any]]]:
    """Images whose labels the detector mostly finds, a little off, with some misses and some
    spurious boxes; and the same as COCO ground truth and results for pycocotools."""
    rng = np.random.default_rng(seed)
    images, annotations, results = [], [], []
    for image_id in range(40):
        truth, detected = [], []
        for _ in range(int(rng.integers(0, 8))):
            class_id = int(rng.integers(0, len(NAMES)))
            x, y = rng.uniform(0, 500, 2)
            width, height = rng.uniform(8, 150, 2)
            truth.append(LabelBox(class_id, x, y, x + width, y + height))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": class_id,
                    "bbox": [x, y, width, height],
                    "area": width * height,
                    "iscrowd": 0,
                }
            )
            if rng.random() < 0.8:
                dx1, dy1, dx2, dy2 = rng.normal(0, 0.08, 4) * (width, height, width, height)
                detected.append(
                    DetectedObject(
                        class_id,
                        NAMES[class_id],
                        float(rng.uniform(0.3, 1.0)),
                        x + dx1,
                        y + dy1,
                        x + width + dx2,
                        y + height + dy2,
                    )
                )
        for _ in range(int(rng.integers(0, 3))):
            class_id = int(rng.integers(0, len(NAMES)))
            x, y = rng.uniform(0, 500, 2)
            width, height = rng.uniform(8, 150, 2)
            score_ = float(rng.uniform(0.25, 0.9))
            detected.append(
                DetectedObject(class_id, NAMES[class_id], score_, x, y, x + width, y + height)
            )
        results.extend(
            {
                "image_id": image_id,
                "category_id": obj.class_id,
                "bbox": [obj.x1, obj.y1, obj.x2 - obj.x1, obj.y2 - obj.y1],
                "score": obj.confidence,
            }
            for obj in detected
        )
        images.append(ScoredImage(truth=truth, detected=detected))
    return images, annotations, results


def _cocoeval(annotations: list[dict[str, Any]], results: list[dict[str, Any]]) -> np.ndarray:
    truth = COCO()
    truth.dataset = {
        "images": [{"id": i, "width": 640, "height": 640} for i in range(40)],
        "annotations": annotations,
        "categories": [{"id": i, "name": name} for i, name in enumerate(NAMES)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats


@pytest.mark.parametrize("seed", [7, 2026])
def test_map_is_what_pycocotools_reports_for_the_same_boxes(seed: int) -> None:
    images, annotations, results = _scene(seed)
    scores = score(images, NAMES)
    reference = _cocoeval(annotations, results)
    assert 0.1 < scores.map50_95 < 0.9  # a scene with something to get right and wrong
    assert scores.map50_95 == pytest.approx(reference[0], abs=1e-6)
    assert scores.map50 == pytest.approx(reference[1], abs=1e-6)
    assert scores.map75 == pytest.approx(reference[2], abs=1e-6)
    # By object size: COCOeval's APs small, medium and large, over the same size bounds.
    assert [row.size for row in scores.sizes] == ["small", "medium", "large"]
    for row, expected in zip(scores.sizes, reference[3:6], strict=True):
        assert row.ground_truth > 0 and row.map50_95 == pytest.approx(expected, abs=1e-6)
    areas = [a["area"] for a in annotations]
    assert [row.ground_truth for row in scores.sizes] == [
        sum(area < 32**2 for area in areas),
        sum(32**2 <= area < 96**2 for area in areas),
        sum(area >= 96**2 for area in areas),
    ]


def test_a_size_nothing_labelled_is_of_has_no_map() -> None:
    large = LabelBox(0, 0, 0, 200, 200)  # found with an IoU of 0.85: matched at 8 of 10 IoUs
    image = ScoredImage(truth=[large], detected=[DetectedObject(0, "person", 0.9, 0, 0, 200, 170)])
    sizes = {row.size: row for row in score([image], NAMES).sizes}
    assert (sizes["small"].ground_truth, sizes["small"].map50_95) == (0, None)
    assert (sizes["medium"].ground_truth, sizes["medium"].map50_95) == (0, None)
    assert (sizes["large"].ground_truth, sizes["large"].map50_95) == (1, pytest.approx(0.8))


def test_precision_and_recall_count_matches_at_iou_one_half() -> None:
    person = LabelBox(0, 0, 0, 100, 100)
    car = LabelBox(2, 200, 200, 300, 260)
    image = ScoredImage(
        truth=[person, car, LabelBox(0, 400, 400, 450, 500)],
        detected=[
            DetectedObject(0, "person", 0.9, 2, 0, 100, 98),  # IoU 0.96 with the person
            DetectedObject(2, "car", 0.8, 250, 200, 350, 260),  # IoU 0.33: a miss and a false one
            DetectedObject(3, "dog", 0.7, 0, 300, 50, 350),  # nothing labelled there
        ],
    )
    scores = score([image], NAMES)
    assert (scores.ground_truth, scores.detections) == (3, 3)
    assert scores.precision == pytest.approx(1 / 3)
    assert scores.recall == pytest.approx(1 / 3)
    by_class = {row.class_name: row for row in scores.classes}
    assert list(by_class) == ["person", "car", "dog"]
    assert (by_class["person"].precision, by_class["person"].recall) == (1.0, 0.5)
    assert (by_class["car"].precision, by_class["car"].recall, by_class["car"].ap50) == (0, 0, 0)
    # Detected, never labelled: no AP and no recall (undefined), a precision of 0.
    dog = by_class["dog"]
    assert (dog.ap50_95, dog.ap50, dog.recall, dog.precision) == (None, None, None, 0.0)


def test_confusions_say_which_class_was_answered_for_which() -> None:
    cat_as_dog = ScoredImage(
        truth=[LabelBox(3, 0, 0, 100, 100), LabelBox(0, 200, 0, 260, 150)],
        detected=[DetectedObject(2, "car", 0.6, 0, 0, 100, 98)],  # the dog, called a car
    )
    spurious = ScoredImage(truth=[], detected=[DetectedObject(4, "bus", 0.5, 0, 0, 50, 50)])
    seen = ScoredImage(
        truth=[LabelBox(3, 10, 10, 60, 60)],
        detected=[DetectedObject(3, "dog", 0.9, 10, 10, 60, 61)],
    )
    confusions = score([cat_as_dog, spurious, seen], NAMES).confusions
    assert [(c.actual, c.predicted, c.count) for c in confusions] == [
        (0, None, 1),  # the person, missed
        (3, 2, 1),  # a dog answered as a car
        (3, 3, 1),  # a dog seen as a dog
        (None, 4, 1),  # a bus where nothing was labelled
    ]


def _person(score_: float, x: float) -> DetectedObject:
    return DetectedObject(0, "person", score_, x, 0, x + 50, 100)


FOUR_PEOPLE = [LabelBox(0, x, 0, x + 50, 100) for x in (0, 100, 200, 300)]
# By score: right, right, wrong, right, wrong, wrong.
RANKED_PEOPLE = [
    _person(0.9, 0),
    _person(0.8, 100),
    _person(0.7, 600),
    _person(0.6, 200),
    _person(0.5, 700),
    _person(0.4, 800),
]


def test_the_operating_point_is_the_threshold_with_the_best_f1() -> None:
    # F1 when keeping the first k (2 * correct / (k + 4)): 0.4, 0.667, 0.571, 0.75, 0.667, 0.6.
    scores = score([ScoredImage(truth=FOUR_PEOPLE, detected=RANKED_PEOPLE)], NAMES)
    (person,) = scores.classes
    assert person.best is not None and scores.best is not None
    assert (person.best.f1, person.best.confidence) == (pytest.approx(0.75), 0.6)
    assert scores.best == person.best  # one class: the overall point is its point


def test_a_threshold_keeps_a_tie_whole() -> None:
    labels = [LabelBox(0, 0, 0, 50, 100)]
    # Keeping the 0.9 alone would give F1 1.0, but a threshold cannot split it from the
    # wrong one that scores the same.
    detected = [_person(0.9, 0), _person(0.9, 500)]
    (person,) = score([ScoredImage(truth=labels, detected=detected)], NAMES).classes
    assert person.best is not None
    assert (person.best.f1, person.best.confidence) == (pytest.approx(2 / 3), 0.9)


@pytest.mark.parametrize("seed", [7, 2026])
def test_no_threshold_does_worse_than_keeping_every_detection(seed: int) -> None:
    images, _, _ = _scene(seed)
    scores = score(images, NAMES)
    assert scores.best is not None and scores.precision and scores.recall
    every = 2 * scores.precision * scores.recall / (scores.precision + scores.recall)
    assert every - 1e-9 <= scores.best.f1 <= 1
    for row in scores.classes:
        if row.ground_truth and row.precision and row.recall:
            assert row.best is not None
            kept_all = 2 * row.precision * row.recall / (row.precision + row.recall)
            assert kept_all - 1e-9 <= row.best.f1
            assert row.best.confidence >= min(
                obj.confidence
                for image in images
                for obj in image.detected
                if obj.class_id == row.class_id
            )


def test_the_curve_gives_precision_recall_and_f1_at_each_threshold_that_changes_them() -> None:
    scores = score([ScoredImage(truth=FOUR_PEOPLE, detected=RANKED_PEOPLE)], NAMES, lowest=0.25)
    (person,) = scores.classes
    points = [(p.confidence, p.precision, p.recall, p.f1) for p in person.curve]
    # From the job's 0.25 every detection is kept, until 0.41 drops the 0.4, and so on: the
    # thresholds in between keep the same detections and are left out.
    assert points == [
        (0.25, pytest.approx(3 / 6), 0.75, pytest.approx(0.6)),
        (0.41, pytest.approx(3 / 5), 0.75, pytest.approx(2 * 3 / 9)),
        (0.51, 0.75, 0.75, 0.75),
        (0.61, pytest.approx(2 / 3), 0.5, pytest.approx(4 / 7)),
        (0.71, 1.0, 0.5, pytest.approx(2 / 3)),
        (0.81, 1.0, 0.25, 0.4),
    ]
    # The operating point is the curve's best F1 (the curve's threshold, on the grid, keeps
    # what the exact one keeps).
    assert person.best is not None
    assert max(point.f1 for point in person.curve) == pytest.approx(person.best.f1)
    assert scores.curve == person.curve  # one class: the overall curve is its curve


@pytest.mark.parametrize("seed", [7, 2026])
def test_every_point_of_the_curve_is_what_keeping_those_detections_scores(seed: int) -> None:
    images, _, _ = _scene(seed)
    lowest = min(obj.confidence for image in images for obj in image.detected)
    scores = score(images, NAMES, lowest=lowest)
    assert len(scores.curve) > 10
    assert scores.curve[0].confidence == lowest
    assert scores.curve[0].precision == pytest.approx(scores.precision)
    assert scores.curve[0].recall == pytest.approx(scores.recall)
    recalls = [point.recall for point in scores.curve]
    assert recalls == sorted(recalls, reverse=True), "a higher threshold never finds more"
    for point in scores.curve[1::7]:
        kept = [
            ScoredImage(
                truth=image.truth,
                detected=[obj for obj in image.detected if obj.confidence >= point.confidence],
            )
            for image in images
        ]
        again = score(kept, NAMES, lowest=point.confidence)
        assert again.precision == pytest.approx(point.precision)
        assert again.recall == pytest.approx(point.recall)
    best = max(point.f1 for point in scores.curve)
    assert scores.best is not None and best <= scores.best.f1 + 1e-9


def test_a_class_without_labels_or_without_detections_has_no_curve() -> None:
    only_detected = ScoredImage(truth=[LabelBox(0, 0, 0, 50, 100)], detected=[_person(0.9, 0)])
    stray_bus = ScoredImage(truth=[LabelBox(4, 0, 0, 50, 50)], detected=[])
    dog = ScoredImage(truth=[], detected=[DetectedObject(3, "dog", 0.7, 0, 0, 50, 50)])
    by_class = {
        row.class_name: row.curve
        for row in score([only_detected, stray_bus, dog], NAMES, lowest=0.5).classes
    }
    assert by_class["bus"] == [] and by_class["dog"] == []
    assert [(p.confidence, p.precision, p.recall) for p in by_class["person"]] == [(0.5, 1.0, 1.0)]


def test_a_labelled_class_nothing_was_detected_of_scores_zero_with_no_precision() -> None:
    scores = score([ScoredImage(truth=[LabelBox(4, 0, 0, 50, 50)], detected=[])], NAMES)
    (bus,) = scores.classes
    assert (bus.ap50_95, bus.recall, bus.precision, bus.best) == (0.0, 0.0, None, None)
    assert (scores.map50_95, scores.precision, scores.recall) == (0.0, None, 0.0)


# YOLO labels


def test_yolo_labels_are_matched_by_stem_and_read_as_fractions_of_the_image() -> None:
    truth = parse_labels(
        _zip({"labels/val/street.txt": "2 0.5 0.5 0.25 0.5\n\n0 0.1 0.2 0.1 0.2\n"}), NAMES
    )
    assert truth.format == YOLO
    labels = truth.of("street.png")
    assert labels is not None and truth.of("street-2.jpg") is None
    car, person = labels.in_pixels(640, 480)
    assert car == LabelBox(2, 240.0, 120.0, 400.0, 360.0)
    assert person.class_id == 0 and (person.x1, person.y2) == pytest.approx((32.0, 144.0))


def test_a_segmentation_line_is_scored_by_its_polygons_box() -> None:
    truth = parse_labels(_zip({"a.txt": "1 0.1 0.2 0.5 0.1 0.3 0.6\n"}), NAMES)
    labels = truth.of("a.jpg")
    assert labels is not None
    assert labels.boxes == (LabelBox(1, 0.1, 0.1, 0.5, 0.6),)


def test_a_data_yaml_names_the_classes_and_unknown_ones_are_reported_not_scored() -> None:
    truth = parse_labels(
        _zip(
            {
                "data.yaml": "path: .\nnames:\n  0: forklift\n  1: Person\n",
                "labels/yard.txt": "0 0.5 0.5 0.2 0.2\n1 0.2 0.2 0.1 0.1\n",
            }
        ),
        NAMES,
    )
    labels = truth.of("yard.jpg")
    assert labels is not None
    assert [box.class_id for box in labels.boxes] == [0]  # Person, by name, any case
    assert truth.unknown_classes == ("forklift",)


def test_a_classes_txt_names_the_classes_when_there_is_no_data_yaml() -> None:
    truth = parse_labels(_zip({"classes.txt": "bus\ndog\n", "x.txt": "1 0.5 0.5 0.1 0.1\n"}), NAMES)
    labels = truth.of("x.jpg")
    assert labels is not None and labels.boxes[0].class_id == NAMES.index("dog")


def test_the_yolo_export_of_a_job_reads_back_as_its_own_labels() -> None:
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(COCO_CLASS_NAMES))
    truth = parse_labels(
        _zip(
            {
                "data.yaml": f"names:\n{names}\nnc: {len(COCO_CLASS_NAMES)}\n",
                "images.csv": "filename,width,height\n",
                "labels/bus.txt": "5 0.5 0.5 0.9 0.6\n",
            }
        ),
        COCO_CLASS_NAMES,
    )
    labels = truth.of("bus.jpg")
    assert labels is not None and labels.boxes[0].class_id == COCO_CLASS_NAMES.index("bus")


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("0 0.5 0.5 0.2", "expected `class x_center y_center width height`"),
        ("0 0.5 0.5 0.2 0.2 0.3", "got 6 values"),
        ("person 0.5 0.5 0.2 0.2", "every value must be a number"),
        ("0.5 0.5 0.5 0.2 0.2", "the class must be a whole number"),
        ("0 0.5 0.5 1.2 0.2", "from 0 to 1"),
        ("0 0.5 nan 0.2 0.2", "from 0 to 1"),
        ("0 0.5 0.5 0 0.2", "width and height must be above 0"),
        ("9 0.5 0.5 0.2 0.2", "class 9 is not one of the model's 0 to 4"),
        ("0 0.1 0.1 0.1 0.2 0.1 0.3", "the polygon encloses no area"),
    ],
)
def test_a_bad_yolo_line_is_refused_naming_its_file_and_line(line: str, said: str) -> None:
    message = _refusal(_zip({"labels/a.txt": f"0 0.5 0.5 0.1 0.1\n{line}\n"}))
    assert "line 2 of labels/a.txt" in message
    assert said in message


def test_two_label_files_for_one_image_name_are_refused() -> None:
    message = _refusal(_zip({"train/a.txt": "0 0.5 0.5 0.1 0.1", "val/a.txt": ""}))
    assert "'train/a.txt' and 'val/a.txt'" in message


def test_a_zip_that_unpacks_beyond_the_bound_is_refused_before_it_is_read() -> None:
    # Zeros deflate about a thousandfold: a few hundred kilobytes sent, 129 MiB unpacked.
    bomb = _zip({"a.txt": b"0" * (MAX_UNPACKED_BYTES + 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    assert "unpack to" in _refusal(bomb)


def test_only_the_label_files_of_the_jobs_uploads_are_read() -> None:
    # Another image's label file, malformed and unpacking beyond the bound: listed, not read.
    labels = _zip(
        {
            "labels/bus.txt": "4 0.5 0.5 0.5 0.5\n",
            "labels/other.txt": b"0" * (MAX_UNPACKED_BYTES + 1024 * 1024),
        }
    )
    truth = parse_labels(labels, NAMES, uploads={"bus", "street"})
    assert truth.unread == ("labels/other.txt",)
    assert list(truth.images) == ["bus"]


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"\x89PNG\r\n\x1a\n", "neither a zip of YOLO label files nor a COCO JSON file"),
        (b"PK\x03\x04 not really a zip", "the labels zip cannot be read"),
        (_zip({"readme.md": "labels to come"}), "holds no .txt label file"),
        (_zip({"a.txt": b"\xff\xfe0 0.5"}), "a.txt in the labels zip is not UTF-8 text"),
        (_zip({"data.yaml": "names: [", "a.txt": ""}), "is not valid YAML"),
        (_zip({"data.yaml": "nc: 3", "a.txt": ""}), "has no `names`"),
    ],
)
def test_a_labels_file_that_cannot_be_read_says_why(data: bytes, said: str) -> None:
    assert said in _refusal(data)


# COCO labels


def test_coco_labels_are_matched_by_file_name_and_categories_by_class_name() -> None:
    truth = parse_labels(_coco(), NAMES)
    assert truth.format == COCO_FORMAT
    labels = truth.of("street.jpg")
    assert labels is not None and labels.size == (640, 480)
    assert labels.in_pixels(1, 1) == [LabelBox(2, 10.0, 20.0, 110.0, 70.0)]


def test_coco_crowd_regions_and_unknown_categories_are_left_out() -> None:
    truth = parse_labels(
        _coco(
            annotations=[
                {"image_id": 1, "category_id": 7, "bbox": [0, 0, 10, 10], "iscrowd": 1},
                {"image_id": 1, "category_id": 8, "bbox": [0, 0, 10, 10]},
            ],
            categories=[{"id": 7, "name": "car"}, {"id": 8, "name": "forklift"}],
        ),
        NAMES,
    )
    labels = truth.of("street.jpg")
    assert labels is not None and labels.boxes == ()
    assert truth.unknown_classes == ("forklift",)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b'{"images": [', "the labels are not valid JSON"),
        (
            _coco(images="street.jpg"),
            "not COCO detection JSON: images: Input should be",
        ),
        (
            _coco(annotations=[{"image_id": 1, "category_id": 7, "bbox": [1, 2, 3]}]),
            "annotations.0.bbox",
        ),
        (
            _coco(annotations=[{"image_id": 2, "category_id": 7, "bbox": [1, 2, 3, 4]}]),
            "annotations[0]: image_id 2 is not in `images`",
        ),
        (
            _coco(annotations=[{"image_id": 1, "category_id": 9, "bbox": [1, 2, 3, 4]}]),
            "annotations[0]: category_id 9 is not in `categories`",
        ),
        (
            _coco(annotations=[{"image_id": 1, "category_id": 7, "bbox": [1, 2, -3, 4]}]),
            "width and height above 0",
        ),
    ],
)
def test_a_coco_file_out_of_shape_is_refused_saying_where(data: bytes, said: str) -> None:
    assert said in _refusal(data)


# A job's records against labels


def _stored(filename: str, objects: list[DetectedObject]) -> DetectionRecord:
    now = datetime(2026, 12, 7, tzinfo=UTC)
    return DetectionRecord(
        id=uuid.uuid4(),
        status="completed",
        job_id=None,
        filename=filename,
        width=640,
        height=480,
        objects=objects,
        timings={},
        created_at=now,
        updated_at=now,
    )


def _evaluated(
    records: list[DetectionRecord], labels: bytes, options: DetectionOptions | None = None
) -> JobEvaluation:
    return evaluate_records(
        job_id=uuid.uuid4(),
        model="yolov8n",
        options=options or DetectionOptions(confidence=0.25, iou=0.45, max_detections=300),
        truth=parse_labels(labels, NAMES),
        records=records,
        model_classes=NAMES,
    )


def _car(x: float) -> DetectedObject:
    return DetectedObject(2, "car", 0.8, x, 300, x + 100, 400)


def test_labels_outside_the_jobs_classes_and_regions_are_not_scored() -> None:
    # A car at the bottom left (feet at y 400 of 480) and one at the top right; a dog.
    labels = _zip(
        {
            "street.txt": "2 0.1171875 0.7291667 0.15625 0.2083333\n"
            "2 0.8 0.1 0.1 0.1\n"
            "3 0.1 0.7 0.05 0.05\n"
        }
    )
    bottom_half = (((0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)),)
    options = DetectionOptions(
        confidence=0.25, iou=0.45, max_detections=300, class_ids=frozenset({2}), regions=bottom_half
    )
    evaluated = _evaluated([_stored("street.jpg", [_car(25)])], labels, options)
    assert (evaluated.scores.ground_truth, evaluated.scores.detections) == (1, 1)
    assert evaluated.scores.map50 == pytest.approx(1.0)
    # Without the job's terms, the other car and the dog are misses.
    plain = _evaluated([_stored("street.jpg", [_car(25)])], labels)
    assert plain.scores.ground_truth == 3 and plain.scores.recall == pytest.approx(1 / 3)


def test_a_coco_image_labelled_at_another_size_is_refused() -> None:
    with pytest.raises(InvalidArgument) as refused:
        _evaluated(
            [_stored("street.jpg", [_car(25)])],
            _coco(images=[{"id": 1, "file_name": "street.jpg", "width": 1280, "height": 960}]),
        )
    assert "'street.jpg' as 1280x960 pixels, but 'street.jpg' was uploaded at 640x480" in str(
        refused.value
    )


def test_images_and_labels_that_do_not_meet_are_counted() -> None:
    labels = _zip({"street.txt": "2 0.1171875 0.7291667 0.15625 0.2083333\n", "gone.txt": ""})
    evaluated = _evaluated(
        [_stored("street.jpg", [_car(25)]), _stored("empty-road.jpg", [])], labels
    )
    assert (evaluated.images, evaluated.images_without_labels) == (2, 1)
    assert (evaluated.unmatched_labels, evaluated.unmatched_label_count) == (["gone.txt"], 1)


def test_an_evaluation_beyond_the_object_bound_is_refused_before_scoring() -> None:
    per_image = 10_000
    line = "2 0.5 0.5 0.01 0.01\n"
    files = {f"{n}.txt": line * per_image for n in range(MAX_SCORED_OBJECTS // per_image + 1)}
    records = [_stored(f"{n}.jpg", []) for n in range(len(files))]
    with pytest.raises(InvalidArgument) as refused:
        _evaluated(records, _zip(files))
    assert f"one evaluation scores at most {MAX_SCORED_OBJECTS}" in str(refused.value)
