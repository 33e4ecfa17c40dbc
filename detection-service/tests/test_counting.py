"""Counting the tracked objects that cross lines (ADR 0039): the counter's rules, the lines a
stream or video job may ask for, and counting in a DetectStream and a video job against the
real Triton and PostgreSQL of the suite."""

import uuid
from collections import Counter

import grpc
import numpy as np
import pytest
import sqlalchemy as sa

from detection_service.jobs.models import PROCESSING, jobs
from detection_service.pipeline.types import DetectedObject
from detection_service.tracking.counting import RegionCounter
from detection_service.tracking.lines import (
    CountingLine,
    CrossingDirection,
    LineCounter,
    LineCrossing,
    checked_lines,
)
from detection_service.video.models import video_frames
from objectvision.v1 import detection_pb2
from objectvision_common.errors import InvalidArgument

from .conftest import (
    PAN_FRAMES,
    detect_stream,
    final_event,
    finished_job,
    panned_jpegs,
    stream_refusal,
    submit_video_job,
    video_frames_of,
)

FRAMES = PAN_FRAMES
IN, OUT = CrossingDirection.IN, CrossingDirection.OUT

# A horizontal line across a 640x480 picture, drawn left to right: its left-hand side (seen
# from its start) is the top of the picture.
ACROSS = CountingLine("across", start=(0.0, 240.0), end=(640.0, 240.0))


def _at(y: float, *, track_id: int | None = 1, x: float = 300.0, class_id: int = 0):
    """An object whose box centre is at (x + 10, y)."""
    return DetectedObject(class_id, "person", 0.9, x, y - 20.0, x + 20.0, y + 20.0, track_id)


def _crossings(counter: LineCounter, frames: list[list[DetectedObject]]) -> list[LineCrossing]:
    return [crossing for objects in frames for crossing in counter.observe(objects)]


# ---- the counter --------------------------------------------------------------------------


def test_moving_up_across_a_line_drawn_left_to_right_is_in_and_back_down_is_out():
    counter = LineCounter([ACROSS])
    up = _crossings(counter, [[_at(300)], [_at(260)], [_at(200)]])
    assert up == [LineCrossing("across", 1, 0, "person", IN)]
    down = _crossings(counter, [[_at(230)], [_at(290)]])
    assert down == [LineCrossing("across", 1, 0, "person", OUT)]
    assert counter.totals() == [(1, 1)]


def test_the_same_crossing_is_in_for_a_line_and_out_for_the_line_drawn_the_other_way():
    reversed_line = CountingLine("reversed", start=ACROSS.end, end=ACROSS.start)
    counter = LineCounter([ACROSS, reversed_line])
    crossings = _crossings(counter, [[_at(300)], [_at(200)]])
    assert [(c.line, c.direction) for c in crossings] == [("across", IN), ("reversed", OUT)]


def test_an_object_passing_beyond_the_end_of_the_segment_does_not_cross_it():
    short = CountingLine("short", start=(0.0, 240.0), end=(200.0, 240.0))
    counter = LineCounter([short])
    assert _crossings(counter, [[_at(300, x=400)], [_at(200, x=400)]]) == []
    assert _crossings(counter, [[_at(300, track_id=2, x=90)], [_at(200, track_id=2, x=90)]]) == [
        LineCrossing("short", 2, 0, "person", IN)
    ]


def test_objects_without_a_track_id_are_not_counted():
    counter = LineCounter([ACROSS])
    assert _crossings(counter, [[_at(300, track_id=None)], [_at(200, track_id=None)]]) == []


def test_each_object_is_counted_on_its_own_with_its_class():
    counter = LineCounter([ACROSS])
    frames = [
        [_at(300, track_id=1), _at(200, track_id=2, class_id=2, x=500)],
        [_at(200, track_id=1), _at(300, track_id=2, class_id=2, x=500)],
    ]
    crossings = _crossings(counter, frames)
    assert sorted((c.track_id, c.class_id, c.direction) for c in crossings) == [
        (1, 0, IN),
        (2, 2, OUT),
    ]


def test_the_same_frames_give_the_same_crossings():
    frames = [[_at(300 - 25 * n, track_id=1), _at(150 + 30 * n, track_id=2)] for n in range(8)]
    runs = [_crossings(LineCounter([ACROSS]), frames) for _ in range(2)]
    assert runs[0] == runs[1]
    assert len(runs[0]) == 2


def test_the_annotated_frame_shows_the_line():
    counter = LineCounter([ACROSS])
    canvas = counter.draw(np.zeros((480, 640, 3), dtype="uint8"))
    assert canvas[240, 100].any(), "the line is drawn across the picture"
    assert not canvas[50, 100].any(), "away from the line nothing is drawn"


# ---- which lines may be asked for ---------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "tracked", "message"),
    [
        ([ACROSS], False, "need tracking"),
        ([CountingLine(f"l{n}", (0, n), (10, n)) for n in range(17)], True, "at most 16"),
        ([CountingLine("", (0, 0), (10, 0))], True, "1 to 64 characters"),
        ([CountingLine("x" * 65, (0, 0), (10, 0))], True, "1 to 64 characters"),
        ([ACROSS, ACROSS], True, "two counting lines are named 'across'"),
        ([CountingLine("gate\x00", (0, 0), (10, 0))], True, "must not contain control"),
        ([CountingLine("\u202egate", (0, 0), (10, 0))], True, "bidirectional text controls"),
        ([CountingLine("dot", (5, 5), (5, 5))], True, "starts where it ends"),
        ([CountingLine("nan", (float("nan"), 5), (5, 9))], True, "no number"),
    ],
)
def test_lines_a_job_may_not_count_are_refused_saying_why(lines, tracked, message):
    with pytest.raises(InvalidArgument, match=message):
        checked_lines(lines, tracked=tracked)


def test_a_line_must_stay_inside_a_picture_of_known_size():
    assert checked_lines([ACROSS], tracked=True, frame_size=(640, 480)) == (ACROSS,)
    with pytest.raises(InvalidArgument, match="leaves the 320x240 picture"):
        checked_lines([ACROSS], tracked=True, frame_size=(320, 240))


def test_no_lines_need_nothing():
    assert checked_lines([], tracked=False) == ()


# ---- counting in a stream over the real Triton --------------------------------------------


def _point(x: float, y: float) -> detection_pb2.Point:
    return detection_pb2.Point(x=x, y=y)


def _bus_centre_x(objects) -> float:
    (bus,) = [o for o in objects if o.class_name == "bus"]
    return (bus.box.x1 + bus.box.x2) / 2


async def _bus_crossing_x(harness, user) -> float:
    """An x the panned bus's centre passes between its second and last frame, read from an
    untracked stream's own boxes so that it does not depend on exactly what the model sees."""
    replies = await detect_stream(harness, user, panned_jpegs(), track=False)
    first, last = (
        _bus_centre_x(replies[1].result.objects),
        _bus_centre_x(replies[-1].result.objects),
    )
    assert last - first > 20, "the bus moves right through the pan"
    return (first + last) / 2


def _vertical_lines(x: float) -> list[detection_pb2.CountingLine]:
    """Two lines at `x`: "down" drawn top to bottom, "up" bottom to top."""
    return [
        detection_pb2.CountingLine(name="down", start=_point(x, 0), end=_point(x, 480)),
        detection_pb2.CountingLine(name="up", start=_point(x, 480), end=_point(x, 0)),
    ]


def _bus_crossings(crossings) -> list[tuple[str, int]]:
    return [(c.line, c.direction) for c in crossings if c.class_name == "bus"]


async def test_a_counting_stream_reports_the_bus_crossing_once_each_way(detection, user):
    x = await _bus_crossing_x(detection, user)
    replies = await detect_stream(
        detection, user, panned_jpegs(), track=True, lines=_vertical_lines(x)
    )
    assert all(not r.error for r in replies)
    crossed = [(r.sequence, _bus_crossings(r.crossings)) for r in replies if r.crossings]
    bus_crossings = [c for _, found in crossed for c in found]
    # Moving right across a line drawn downwards is from its right-hand side to its left.
    assert bus_crossings == [
        ("down", detection_pb2.CROSSING_DIRECTION_IN),
        ("up", detection_pb2.CROSSING_DIRECTION_OUT),
    ]
    for reply in replies:
        tracked = {o.track_id: o.class_name for o in reply.result.objects if o.HasField("track_id")}
        for crossing in reply.crossings:
            assert tracked.get(crossing.track_id) == crossing.class_name, "one of its objects"


async def test_a_stream_asking_for_lines_without_tracking_is_refused(detection, user):
    first = detection_pb2.Frame(
        sequence=0,
        image=detection_pb2.ImageInput(data=panned_jpegs()[0], filename="pan-0.jpg"),
        frame_rate=10,
        lines=_vertical_lines(5),
    )
    code, details = await stream_refusal(detection, user, first)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "need tracking" in details


@pytest.mark.parametrize(
    ("lines", "zones", "message"),
    [
        (
            [detection_pb2.CountingLine(name="far", start=_point(700, 0), end=_point(700, 480))],
            [],
            "counting line 'far' leaves the 640x480 picture",
        ),
        (
            [],
            [
                detection_pb2.CountingZone(
                    name="lawn",
                    polygon=[_point(0, 400), _point(640, 400), _point(640, 500)],
                )
            ],
            "counting zone 'lawn' leaves the 640x480 picture",
        ),
    ],
)
async def test_a_stream_whose_region_leaves_its_frames_ends_at_the_first_such_frame(
    detection, user, lines, zones, message
):
    """A stream declares no picture size, so its regions pass when it opens; the first frame
    they leave ends it, unanswered, rather than counting nothing without a word."""
    answered = []
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for reply in detection.stub.DetectStream(
            iter(
                [
                    detection_pb2.Frame(
                        sequence=n,
                        image=detection_pb2.ImageInput(data=data, filename=f"pan-{n}.jpg"),
                        track=n == 0,
                        frame_rate=10 if n == 0 else 0,
                        lines=lines if n == 0 else (),
                        zones=zones if n == 0 else (),
                    )
                    for n, data in enumerate(panned_jpegs()[:3])
                ]
            ),
            metadata=detection.metadata(user),
            timeout=120,
        ):
            answered.append(reply)

    assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ended.value.details() == message
    assert answered == []


def test_a_counter_checks_each_new_picture_size_its_frames_bring():
    counter = RegionCounter([ACROSS], [])
    counter.check_picture(640, 480)
    counter.check_picture(640, 480)
    with pytest.raises(InvalidArgument, match="leaves the 320x240 picture"):
        counter.check_picture(320, 240)


# ---- counting in a video job --------------------------------------------------------------


async def test_a_counting_video_job_stores_each_frames_crossings_and_sums_them(
    detection, user, panned_video
):
    x = await _bus_crossing_x(detection, user)
    lines = _vertical_lines(x)[::-1]
    submitted = await submit_video_job(detection, user, panned_video, track=True, lines=lines)
    assert list(submitted.video.lines) == lines
    job = await finished_job(detection, user, submitted.id)
    assert job.status == detection_pb2.JOB_STATUS_COMPLETED, job
    frames = await video_frames_of(detection, user, submitted.id)
    crossings = [c for frame in frames for c in frame.crossings]
    assert _bus_crossings(crossings) == [
        ("up", detection_pb2.CROSSING_DIRECTION_OUT),
        ("down", detection_pb2.CROSSING_DIRECTION_IN),
    ]
    summed = Counter((c.line, c.class_name, c.direction) for c in crossings)
    counted = {
        (count.line, count.class_name): (count.crossed_in, count.crossed_out)
        for count in job.video.line_counts
    }
    assert counted == {
        (line, name): (
            summed[(line, name, detection_pb2.CROSSING_DIRECTION_IN)],
            summed[(line, name, detection_pb2.CROSSING_DIRECTION_OUT)],
        )
        for line, name, _ in summed
    }
    assert job.video.line_counts[0].line == "up", "in the order the lines were given"
    # The final event says the same, for the webhook, the WebSocket and the report email.
    finished = await final_event(detection, submitted.id)
    assert list(finished.line_counts) == list(job.video.line_counts)


async def test_a_video_job_whose_line_leaves_the_picture_is_refused_and_keeps_nothing(
    detection, user, panned_video
):
    outside = [detection_pb2.CountingLine(name="far", start=_point(0, 0), end=_point(900, 10))]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await submit_video_job(detection, user, panned_video, track=True, lines=outside)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "leaves the 640x480 picture" in (refused.value.details() or "")
    listed = await detection.stub.ListJobs(
        detection_pb2.ListJobsRequest(), metadata=detection.metadata(user), timeout=30
    )
    assert list(listed.jobs) == []


async def _frame_crossings(harness, user, job_id: str) -> list[list[detection_pb2.LineCrossing]]:
    return [list(frame.crossings) for frame in await video_frames_of(harness, user, job_id)]


async def test_a_resumed_video_job_counts_as_if_it_had_run_once(make_harness, user, panned_video):
    """A worker that died left the first frames committed and the job processing (ADR 0016);
    the one that takes the job over counts the rest from where the counting stood, neither
    missing a crossing nor counting a committed one again."""
    harness = await make_harness(JOB_WORKERS=0)
    x = await _bus_crossing_x(harness, user)
    submitted = await submit_video_job(
        harness, user, panned_video, track=True, lines=_vertical_lines(x)
    )
    job_id = uuid.UUID(submitted.id)
    await harness.service.processor.run(job_id)
    once = await _frame_crossings(harness, user, submitted.id)
    counted_once = (await finished_job(harness, user, submitted.id)).video.line_counts
    assert any(once), "the bus crossed during the video"

    # What the dead worker leaves: half the frames committed, the job still processing, its
    # heartbeat as old as a dead worker's (older than the lease).
    kept = FRAMES // 2
    async with harness.service.engine.begin() as conn:
        await conn.execute(
            sa.delete(video_frames).where(
                video_frames.c.job_id == job_id, video_frames.c.frame_index >= kept
            )
        )
        await conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id)
            .values(
                status=PROCESSING,
                processed=kept,
                completed_at=None,
                heartbeat_at=sa.func.now() - harness.settings.job_lease * 2,
            )
        )
    await harness.service.processor.run(job_id)

    job = await finished_job(harness, user, submitted.id)
    assert job.status == detection_pb2.JOB_STATUS_COMPLETED, job
    assert await _frame_crossings(harness, user, submitted.id) == once
    assert list(job.video.line_counts) == list(counted_once)
