"""Scoring a video job's frames and tracking against per-frame labels (ADR 0056).

The tracking metrics are MOTChallenge's CLEAR MOT and identity measures; the expected numbers
here are worked out by hand from their definitions on small scenes, so a change of library or
of matching would show. The labels readers are checked on MOTChallenge's gt.txt as MOT17 and
CVAT write it, and on YOLO and COCO labels named by frame. The end-to-end path through the
gateway is tests/test_video_evaluation_api.py.
"""

import io
import json
import uuid
import zipfile

import pytest

from detection_service.evaluation.labels import (
    MOT,
    YOLO,
    LabelBox,
    frame_number,
    parse_labels,
    parse_video_labels,
)
from detection_service.evaluation.service import JobEvaluation, evaluate_frames
from detection_service.evaluation.tracking import TrackedFrame, score_tracking
from detection_service.pipeline.types import DetectedObject, DetectionOptions
from detection_service.video.service import CommittedFrames, FrameRecord
from objectvision_common.errors import InvalidArgument

NAMES = ("person", "bicycle", "car", "dog", "bus")
PERSON, CAR = 0, 2


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _label(track: int, x: float, class_id: int = PERSON) -> LabelBox:
    return LabelBox(class_id, x, 0, x + 10, 10, track_id=track)


def _tracked(track: int | None, x: float, class_id: int = PERSON) -> DetectedObject:
    return DetectedObject(class_id, NAMES[class_id], 0.9, x, 0, x + 10, 10, track_id=track)


# Tracking metrics


def test_tracking_is_scored_by_motchallenges_definitions() -> None:
    # Two people over four frames. Frame 0: no track confirmed yet (no ids); then person 2's
    # track changes from 8 to 9 in frame 2; a track 10 in frame 3 follows no one.
    frames = [
        TrackedFrame(0, [_label(1, 0), _label(2, 50)], [_tracked(None, 0), _tracked(None, 50)]),
        TrackedFrame(1, [_label(1, 1), _label(2, 51)], [_tracked(7, 1), _tracked(8, 51)]),
        TrackedFrame(2, [_label(1, 2), _label(2, 52)], [_tracked(7, 2), _tracked(9, 52)]),
        TrackedFrame(
            3,
            [_label(1, 3), _label(2, 53)],
            [_tracked(7, 3), _tracked(9, 53), _tracked(10, 100)],
        ),
    ]
    tracking = score_tracking(frames)
    assert tracking is not None
    overall = tracking.overall
    # 8 labelled objects: 2 missed (frame 0), 1 false detection, 1 identity switch.
    assert (overall.misses, overall.false_positives, overall.id_switches) == (2, 1, 1)
    assert overall.mota == pytest.approx(1 - (2 + 1 + 1) / 8)
    assert overall.motp == pytest.approx(1.0)
    # The best assignment: person 1 to track 7 (3 frames), person 2 to track 9 (2 frames):
    # 5 of the 8 labelled and of the 7 tracked objects agree.
    assert overall.id_precision == pytest.approx(5 / 7)
    assert overall.id_recall == pytest.approx(5 / 8)
    assert overall.idf1 == pytest.approx(2 * 5 / (8 + 7))
    # Each person was tracked in 3 of their 4 frames: partly, not mostly (80%).
    assert (overall.ground_truth_tracks, overall.mostly_tracked, overall.partially_tracked) == (
        2,
        0,
        2,
    )
    assert tracking.classes[PERSON] == overall


def test_classes_are_matched_apart() -> None:
    # A car tracked exactly where a person is labelled: a miss and a false detection, not a match.
    frames = [TrackedFrame(n, [_label(1, n)], [_tracked(4, n, CAR)]) for n in range(3)]
    tracking = score_tracking(frames)
    assert tracking is not None
    assert (tracking.overall.misses, tracking.overall.false_positives) == (3, 3)
    # 1 - (3 misses + 3 false) / 3 labelled: below 0, as MOTA goes when errors outnumber objects.
    assert tracking.overall.mota == pytest.approx(-1.0)
    assert list(tracking.classes) == [PERSON], "a class with no labelled object has no row"


def test_a_box_overlapping_under_one_half_is_no_match() -> None:
    shifted = [TrackedFrame(0, [_label(1, 0)], [_tracked(3, 6)])]  # IoU 4/16
    close = [TrackedFrame(0, [_label(1, 0)], [_tracked(3, 2)])]  # IoU 8/12
    missed, matched = score_tracking(shifted), score_tracking(close)
    assert missed is not None and matched is not None
    assert (missed.overall.misses, missed.overall.motp) == (1, None)
    assert matched.overall.misses == 0
    assert matched.overall.motp == pytest.approx(8 / 12)


# MOTChallenge labels

MOT17_ROWS = (
    "1,1,100,50,20,40,1,1,0.9\n"
    "1,2,300,50,20,40,1,1,1.0\n"
    "1,3,500,60,40,20,0,3,1.0\n"  # a car, not considered
    "1,4,10,10,20,40,1,7,0.3\n"  # a static person: not MOTChallenge's scored class
    "2,1,104,50,20,40,1,1,0.9\n"
    "4,1,112,50,20,40,0,1,0.9\n"  # frame 4 is labelled, its one row not considered
)


def test_mot17_gt_rows_become_pixel_boxes_with_ids_by_frame_from_zero() -> None:
    truth = parse_video_labels(MOT17_ROWS.encode(), NAMES)
    assert (truth.format, truth.tracked) == (MOT, True)
    assert sorted(truth.frames) == [0, 1, 3]
    assert truth.frames[0].in_pixels(640, 480) == [
        LabelBox(PERSON, 100, 50, 120, 90, track_id=1),
        LabelBox(PERSON, 300, 50, 320, 90, track_id=2),
    ]
    assert truth.frames[1].in_pixels(640, 480) == [LabelBox(PERSON, 104, 50, 124, 90, track_id=1)]
    assert truth.frames[3].boxes == ()
    assert truth.span() == (0, 3)


def test_a_six_column_file_is_all_pedestrians() -> None:
    truth = parse_video_labels(b"1,5,10,20,30,40\n2,5,12,20,30,40\n", NAMES)
    assert [box.track_id for frame in truth.frames.values() for box in frame.boxes] == [5, 5]
    assert {box.class_id for frame in truth.frames.values() for box in frame.boxes} == {PERSON}


def test_a_cvat_mot_zip_names_its_classes_in_labels_txt() -> None:
    labels = _zip(
        {
            "gt/labels.txt": "car\nperson\nforklift\n",
            "gt/gt.txt": "1,1,10,10,50,30,1,1,1\n1,2,100,10,20,40,1,2,1\n1,3,200,10,60,60,1,3,1\n",
        }
    )
    truth = parse_video_labels(labels, NAMES)
    assert [(box.class_id, box.track_id) for box in truth.frames[0].boxes] == [
        (CAR, 1),
        (PERSON, 2),
    ]
    assert truth.unknown_classes == ("forklift",)


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        ("1,1,10,10,20\n", "line 1 of gt.txt: expected `frame, id, left, top, width, height`"),
        (
            "1,1,10,10,20,40\n0,2,10,10,20,40\n",
            "line 2 of gt.txt: the frame is a whole number from 1",
        ),
        ("1,1,10,10,-20,40\n", "line 1 of gt.txt: width and height must be above 0"),
        ("1,one,10,10,20,40\n", "line 1 of gt.txt: every value must be a number"),
        ("1,1,10,10,20,40,1,1\n1,1,50,10,20,40,1,1\n", "object 1 is labelled twice in frame 1"),
        ("1,1,10,10,20,nan\n", "line 1 of gt.txt: every value must be a finite number"),
    ],
)
def test_a_bad_gt_row_is_refused_naming_its_line(rows: str, said: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_video_labels(rows.encode(), NAMES)
    assert said in str(refused.value)


def test_one_yolo_file_sent_alone_is_refused_saying_how_to_send_yolo_labels() -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_video_labels(b"0 0.5 0.5 0.2 0.3\n", NAMES)
    assert "as a single YOLO label file is: send YOLO labels as a zip" in str(refused.value)


def test_a_class_beyond_labels_txt_is_refused() -> None:
    labels = _zip({"gt/labels.txt": "car\n", "gt/gt.txt": "1,1,10,10,50,30,1,2,1\n"})
    with pytest.raises(InvalidArgument) as refused:
        parse_video_labels(labels, NAMES)
    assert "line 1 of gt/gt.txt: class 2 is not one of labels.txt's lines 1 to 1" in str(
        refused.value
    )


def test_mot_labels_sent_for_a_batch_job_say_what_they_score() -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_labels(_zip({"gt/gt.txt": "1,1,10,10,20,40\n"}), NAMES)
    assert "MOTChallenge ground truth (gt.txt), which scores a video job's frames" in str(
        refused.value
    )


# YOLO and COCO labels of a video


def test_yolo_and_coco_entries_name_frames_by_their_last_digits() -> None:
    assert [
        frame_number(name) for name in ("obj_train_data/frame_000042.txt", "7.txt", "x.txt")
    ] == [
        42,
        7,
        None,
    ]
    yolo = parse_video_labels(
        _zip(
            {
                "obj.names": "person\ncar\n",
                "obj_train_data/frame_000000.txt": "1 0.5 0.5 0.2 0.2\n",
                "obj_train_data/frame_000002.txt": "",
                "train.txt": "",
            }
        ),
        NAMES,
    )
    assert (yolo.format, yolo.tracked, sorted(yolo.frames)) == (YOLO, False, [0, 2])
    assert yolo.frames[0].in_pixels(100, 100) == [LabelBox(CAR, 40, 40, 60, 60)]
    assert yolo.unnumbered == ("train.txt",)
    coco = parse_video_labels(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "frame_000005.PNG", "width": 640, "height": 480}],
                "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
                "categories": [{"id": 1, "name": "dog"}],
            }
        ).encode(),
        NAMES,
    )
    assert coco.frames[5].boxes == (LabelBox(3, 1, 2, 4, 6),)


def test_two_entries_for_one_frame_are_refused() -> None:
    with pytest.raises(InvalidArgument) as refused:
        parse_video_labels(_zip({"a/frame_1.txt": "", "b/frame_000001.txt": ""}), NAMES)
    assert "the labels name frame 1 twice" in str(refused.value)


# A video job's frames scored


def _frames(*frames: FrameRecord, tracked: bool = True) -> CommittedFrames:
    return CommittedFrames(width=640, height=480, tracked=tracked, frames=list(frames))


def _frame(index: int, *objects: DetectedObject, error: str | None = None) -> FrameRecord:
    return FrameRecord(index, index / 10, list(objects), error)


def _evaluated(video: CommittedFrames, labels: str | bytes) -> JobEvaluation:
    data = labels.encode() if isinstance(labels, str) else labels
    return evaluate_frames(
        job_id=uuid.uuid4(),
        model="yolov8n",
        options=DetectionOptions(confidence=0.25, iou=0.45, max_detections=300),
        truth=parse_video_labels(data, NAMES),
        video=video,
        model_classes=NAMES,
    )


def _person(track: int | None, x: float) -> DetectedObject:
    return DetectedObject(PERSON, "person", 0.9, x, 100, x + 40, 180, track_id=track)


def test_only_the_sampled_frames_the_labels_cover_are_scored() -> None:
    # Labels for frames 2 to 5 (MOT's 3 to 6); the job sampled every other frame, 0 to 8.
    labels = "".join(f"{frame},1,{100 + frame},100,40,80\n" for frame in (3, 4, 6))
    video = _frames(
        _frame(0, _person(None, 100)),
        _frame(2, _person(None, 102)),
        _frame(4, _person(3, 104)),  # frame 4 has no row: labelled empty, the person is false
        _frame(6, _person(3, 106)),
        _frame(8, _person(3, 108)),
    )
    evaluated = _evaluated(video, labels)
    assert (evaluated.job_kind, evaluated.labels_format) == ("video", MOT)
    assert (evaluated.images, evaluated.images_without_labels) == (2, 1)
    assert evaluated.frames_outside_labels == 3
    assert (evaluated.scores.ground_truth, evaluated.scores.detections) == (1, 2)
    assert evaluated.tracking is not None
    # Frame 2's person had no track yet: missed by tracking, found by detection.
    assert (evaluated.tracking.overall.misses, evaluated.tracking.overall.false_positives) == (1, 1)


def test_an_untracked_job_or_labels_without_ids_get_no_tracking_scores() -> None:
    frames = (_frame(0, _person(None, 100)), _frame(1, _person(None, 100)))
    assert _evaluated(_frames(*frames, tracked=False), "1,1,100,100,40,80\n").tracking is None
    yolo = _zip({"frame_000000.txt": "0 0.1875 0.2916667 0.0625 0.1666667\n"})
    tracked_job = _evaluated(_frames(*frames), yolo)
    assert tracked_job.tracking is None
    assert tracked_job.scores.map50 == pytest.approx(1.0)


def test_a_frame_that_failed_to_decode_is_not_scored() -> None:
    video = _frames(_frame(0, _person(None, 100)), _frame(1, error="corrupt frame"))
    evaluated = _evaluated(video, "1,1,100,100,40,80\n2,1,100,100,40,80\n")
    assert evaluated.images == 1
    assert evaluated.scores.ground_truth == 1


def test_labels_of_frames_the_job_never_sampled_are_refused_saying_so() -> None:
    video = _frames(_frame(0, _person(None, 100)), _frame(10, _person(None, 100)))
    with pytest.raises(InvalidArgument) as refused:
        _evaluated(video, "3,1,100,100,40,80\n5,1,100,100,40,80\n")
    assert "the labels cover frames 2 to 4 (counted from 0)" in str(refused.value)
    assert "detected frames 0 to 10: no frame it sampled is labelled" in str(refused.value)


def test_frames_without_any_object_of_a_class_change_nothing_of_its_scores() -> None:
    people = [
        TrackedFrame(n, [_label(1, n), _label(2, 60)], [_tracked(7, n), _tracked(8 + n % 2, 60)])
        for n in range(6)
    ]
    cars = [TrackedFrame(n, [_label(5, 200 + n, CAR)], []) for n in range(6, 9)]
    # The same scene with empty frames between its objects' frames and a car labelled later.
    spread = [TrackedFrame(frame.frame_index * 10, frame.truth, frame.detected) for frame in people]
    empty = [TrackedFrame(n, [], []) for n in range(61, 100)]
    together = score_tracking([*people, *cars])
    assert together == score_tracking(
        [*spread, *empty, *(TrackedFrame(n + 100, f.truth, f.detected) for n, f in enumerate(cars))]
    )
    # A labelled car never tracked is missed in each of its frames, none of a person's.
    assert together is not None
    assert (together.classes[CAR].misses, together.classes[CAR].mostly_lost) == (3, 1)
    assert (together.classes[PERSON].misses, together.classes[PERSON].id_switches) == (0, 5)


def test_a_name_ending_in_more_digits_than_any_frame_count_names_no_frame() -> None:
    assert frame_number("frame_" + "9" * 5000 + ".txt") is None
    assert frame_number("frame_999999999.txt") == 999_999_999
