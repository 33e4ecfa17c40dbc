"""Following objects from frame to frame (ADR 0038): the tracker, a tracked DetectStream and a
tracked video job, against the real Triton and PostgreSQL of the suite."""

from pathlib import Path

from detection_service.pipeline.types import DetectedObject
from detection_service.tracking.tracker import ObjectTracker, TrackingSettings
from objectvision.v1 import detection_pb2

from .conftest import (
    PAN_FRAMES,
    detect_stream,
    finished_job,
    panned_jpegs,
    submit_video_job,
    video_frames_of,
)

SETTINGS = TrackingSettings(activation_confidence=0.5, lost_seconds=1.0)
FRAMES = PAN_FRAMES


def _box(x: float, *, confidence: float = 0.9, class_id: int = 0) -> DetectedObject:
    return DetectedObject(class_id, "person", confidence, x, 100.0, x + 60.0, 260.0)


def _ids(objects: list[DetectedObject]) -> list[int | None]:
    return [o.track_id for o in objects]


# ---- the tracker --------------------------------------------------------------------------


def test_a_moving_object_keeps_one_id_from_its_second_frame():
    tracker = ObjectTracker(SETTINGS, frame_rate=10)
    seen = [_ids(tracker.follow([_box(50 + 8 * n), _box(400 - 8 * n)])) for n in range(6)]
    assert seen[0] == [None, None]
    first, second = seen[1]
    assert first is not None and second is not None and first != second
    assert seen[1:] == [[first, second]] * 5


def test_nothing_is_dropped_and_order_is_kept():
    tracker = ObjectTracker(SETTINGS, frame_rate=10)
    tracker.follow([_box(50), _box(300)])
    objects = [_box(300), _box(52), _box(600, confidence=0.3)]
    followed = tracker.follow(objects)
    assert [(o.x1, o.confidence) for o in followed] == [(o.x1, o.confidence) for o in objects]
    # The doubtful newcomer starts no track; the two known objects keep theirs.
    assert followed[2].track_id is None
    assert followed[0].track_id is not None and followed[1].track_id is not None


def test_a_doubtful_box_continues_a_track_but_never_starts_one():
    tracker = ObjectTracker(SETTINGS, frame_rate=10)
    tracker.follow([_box(50)])
    (confirmed,) = _ids(tracker.follow([_box(55)]))
    assert confirmed is not None
    # Partly hidden: its confidence drops below the activation threshold, the id stays.
    assert _ids(tracker.follow([_box(60, confidence=0.3)])) == [confirmed]
    alone = ObjectTracker(SETTINGS, frame_rate=10)
    assert [_ids(alone.follow([_box(50, confidence=0.3)])) for _ in range(4)] == [[None]] * 4


def test_an_object_away_longer_than_the_lost_time_comes_back_with_a_new_id():
    def away(frames_missing: int) -> tuple[int | None, int | None]:
        tracker = ObjectTracker(TrackingSettings(0.5, lost_seconds=0.5), frame_rate=10)
        tracker.follow([_box(50)])
        (before,) = _ids(tracker.follow([_box(50)]))
        for _ in range(frames_missing):
            tracker.follow([])
        tracker.follow([_box(50)])
        (after,) = _ids(tracker.follow([_box(50)]))
        return before, after

    before, after = away(2)  # 0.2 s at 10 frames a second: still the same object
    assert before is not None and after == before
    before, after = away(20)  # 2 s: a new track
    assert before is not None and after is not None and after != before


def test_the_same_frames_in_the_same_order_get_the_same_ids():
    frames = [[_box(50 + 7 * n), _box(300 - 5 * n), _box(500, confidence=0.6)] for n in range(8)]
    runs = []
    for _ in range(2):
        tracker = ObjectTracker(SETTINGS, frame_rate=10)
        runs.append([_ids(tracker.follow(objects)) for objects in frames])
    assert runs[0] == runs[1]
    assert all(track is not None for track in runs[0][-1])


# ---- a tracked stream over the real Triton ------------------------------------------------


def _bus_ids(objects) -> list[int | None]:
    return [
        o.track_id if o.HasField("track_id") else None for o in objects if o.class_name == "bus"
    ]


async def test_a_tracked_stream_gives_the_moving_bus_one_id(detection, user):
    replies = await detect_stream(detection, user, panned_jpegs(), track=True)
    assert [r.sequence for r in replies] == list(range(FRAMES))
    assert all(not r.error for r in replies)
    # Seen first, not yet confirmed; then the same id in every frame.
    assert _bus_ids(replies[0].result.objects) == [None]
    (bus,) = _bus_ids(replies[1].result.objects)
    assert bus is not None
    assert [_bus_ids(r.result.objects) for r in replies[1:]] == [[bus]] * (FRAMES - 1)
    for reply in replies[1:]:
        ids = [o.track_id for o in reply.result.objects if o.HasField("track_id")]
        assert len(ids) == len(set(ids)), "one id per object in a frame"
        assert len(ids) >= 4, "the bus and the people in it are followed"


async def test_an_untracked_stream_has_no_track_ids(detection, user):
    replies = await detect_stream(detection, user, panned_jpegs()[:3], track=False)
    assert [o.HasField("track_id") for r in replies for o in r.result.objects] == [False] * sum(
        len(r.result.objects) for r in replies
    )


# ---- a tracked video job ------------------------------------------------------------------


async def test_a_tracked_video_job_stores_one_id_for_the_moving_bus(
    detection, user, panned_video, tmp_path: Path
):
    submitted = await submit_video_job(detection, user, panned_video, track=True)
    assert submitted.video.tracked
    job = await finished_job(detection, user, submitted.id)
    assert job.status == detection_pb2.JOB_STATUS_COMPLETED, job
    assert job.video.tracked
    frames = await video_frames_of(detection, user, submitted.id)
    assert len(frames) == FRAMES
    (bus,) = _bus_ids(frames[1].objects)
    assert bus is not None
    assert [_bus_ids(frame.objects) for frame in frames[1:]] == [[bus]] * (FRAMES - 1)


async def test_an_untracked_video_job_stores_no_track_ids(detection, user, panned_video):
    submitted = await submit_video_job(detection, user, panned_video, track=False)
    assert not submitted.video.tracked
    job = await finished_job(detection, user, submitted.id)
    assert job.status == detection_pb2.JOB_STATUS_COMPLETED, job
    frames = await video_frames_of(detection, user, submitted.id)
    assert not any(o.HasField("track_id") for frame in frames for o in frame.objects)
