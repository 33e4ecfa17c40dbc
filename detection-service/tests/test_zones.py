"""Counting zones (ADR 0042): which zones an object stands in, the zones a stream or video job
may ask for, and zones in a DetectStream and a video job against the real Triton and
PostgreSQL of the suite, whose per-zone counts (in the job and its final event) must equal
what its stored frames say."""

import statistics
import tracemalloc
from collections import defaultdict

import grpc
import numpy as np
import pytest
import sqlalchemy as sa
from google.protobuf import json_format

from detection_service.outbox import OUTBOX
from detection_service.pipeline.types import DetectedObject
from detection_service.tracking.counting import RegionCounter
from detection_service.tracking.zones import CountingZone, ZoneLocator, checked_zones
from objectvision.v1 import detection_pb2, notification_pb2
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

# The left half of a 640x480 picture, and a square in its middle.
LEFT = CountingZone("left", ((0, 0), (320, 0), (320, 480), (0, 480)))
MIDDLE = CountingZone("middle", ((200, 140), (440, 140), (440, 340), (200, 340)))


def _standing(x: float, feet_y: float, *, track_id: int | None = None) -> DetectedObject:
    """A 40x100 person whose box's bottom centre (where it stands) is at (x, feet_y)."""
    return DetectedObject(0, "person", 0.9, x - 20, feet_y - 100, x + 20, feet_y, track_id)


# ---- which zones an object stands in -------------------------------------------------------


def test_an_object_is_in_a_zone_where_it_stands_not_where_its_box_reaches():
    locator = ZoneLocator([MIDDLE])
    standing_inside = _standing(300, 300)
    head_over_the_edge = _standing(300, 400)  # its box reaches into the square, its feet below
    located = locator.locate([standing_inside, head_over_the_edge])
    assert [obj.zones for obj in located] == [("middle",), ()]
    assert located[0] == DetectedObject(0, "person", 0.9, 280, 200, 320, 300, zones=("middle",))


def test_an_object_in_overlapping_zones_is_in_each_in_the_order_given():
    people = [_standing(250, 300), _standing(400, 300), _standing(600, 300)]
    located = ZoneLocator([MIDDLE, LEFT]).locate(people)
    assert [obj.zones for obj in located] == [("middle", "left"), ("middle",), ()]
    located = ZoneLocator([LEFT, MIDDLE]).locate(people)
    assert located[0].zones == ("left", "middle")


def test_untracked_objects_and_empty_frames_are_located_too():
    locator = ZoneLocator([LEFT])
    assert locator.locate([]) == []
    assert locator.locate([_standing(100, 200, track_id=None)])[0].zones == ("left",)


def test_a_counter_with_zones_and_no_lines_names_zones_and_reports_no_crossing():
    counter = RegionCounter.of([], [LEFT], picture=(640, 480))
    assert counter is not None
    located, crossings = counter.observe([_standing(100, 200, track_id=3)])
    assert (located[0].zones, located[0].track_id, crossings) == (("left",), 3, ())
    assert RegionCounter.of([], []) is None


def test_an_object_standing_on_a_zones_edge_is_in_it():
    on_the_edges = [_standing(440, 300), _standing(300, 340), _standing(200, 340)]
    just_outside = [_standing(440.5, 300), _standing(300, 340.5)]
    located = ZoneLocator([MIDDLE]).locate(on_the_edges + just_outside)
    assert [obj.zones for obj in located] == [("middle",)] * 3 + [()] * 2


def test_a_slanted_edge_is_where_its_corners_put_it_not_on_a_pixel_grid():
    triangle = CountingZone("ramp", ((0, 0), (100, 0), (0, 100)))
    located = ZoneLocator([triangle]).locate([_standing(49.6, 50.3), _standing(49.6, 50.5)])
    assert [obj.zones for obj in located] == [("ramp",), ()]


def test_zones_over_the_largest_picture_cost_their_corners_not_its_pixels():
    """16 zones each spanning a 40-megapixel frame (MAX_IMAGE_PIXELS) cost kilobytes: a mask
    per zone, as supervision's PolygonZone keeps, would be 640 MB for the one stream."""
    width, height = 8000, 5000
    zones = [
        CountingZone(f"z{n}", ((0, 0), (width, 0), (width, height - n), (0, height)))
        for n in range(16)
    ]
    tracemalloc.start()
    try:
        counter = RegionCounter.of([], zones)
        assert counter is not None
        counter.check_picture(width, height)
        located, _ = counter.observe([_standing(4000, 4900), _standing(7990, 4999)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000, peak
    assert located[0].zones == tuple(zone.name for zone in zones)
    assert located[1].zones == ("z0", "z1")  # further right, the slanted bottoms pass above


def test_a_streams_zone_is_checked_against_its_first_frame_before_anything_is_counted():
    """A stream says no picture size: its zones are checked once a frame shows it. A corner
    20,000 pixels out is refused at that frame, having cost next to nothing (a mask up to it,
    as supervision's PolygonZone would keep, would be 400 MB; at a million pixels, a
    terabyte)."""
    far = CountingZone("far", ((0, 0), (20_000, 0), (20_000, 20_000)))
    tracemalloc.start()
    try:
        counter = RegionCounter.of([], [far])
        assert counter is not None
        with pytest.raises(InvalidArgument, match="counting zone 'far' leaves the 640x480 picture"):
            counter.check_picture(640, 480)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Shapely's first import included; the mask alone would be 400 MB.
    assert peak < 10_000_000, peak
    with pytest.raises(RuntimeError, match="regions are checked against a picture before"):
        counter.observe([_standing(100, 200)])
    fitting = RegionCounter.of([], [LEFT])
    assert fitting is not None
    fitting.check_picture(640, 480)
    assert fitting.observe([_standing(100, 200)])[0][0].zones == ("left",)


def test_the_annotated_frame_shows_each_zone_with_how_many_stand_in_it():
    locator = ZoneLocator([MIDDLE])
    blank = np.zeros((480, 640, 3), dtype="uint8")
    locator.locate([_standing(300, 300)])
    canvas = locator.draw(blank.copy())
    assert canvas[140, 300].any(), "the zone's edge is drawn"
    assert canvas[250, 260].any(), "its inside is shaded"
    assert not canvas[50, 50].any(), "outside it nothing is drawn"


# ---- which zones may be asked for ----------------------------------------------------------


def _square(name: str, size: float = 10) -> CountingZone:
    return CountingZone(name, ((0, 0), (size, 0), (size, size), (0, size)))


@pytest.mark.parametrize(
    ("zones", "tracked", "message"),
    [
        ([LEFT], False, "counting zones need tracking"),
        ([_square(f"z{n}") for n in range(17)], True, "17 counting zones; at most 16"),
        ([_square("")], True, "1 to 64 characters"),
        ([_square("x" * 65)], True, "1 to 64 characters"),
        ([LEFT, LEFT], True, "two counting zones are named 'left'"),
        ([_square("bay\n")], True, "must not contain control"),
        ([_square("\u202ebay")], True, "bidirectional text controls"),
        ([CountingZone("two", ((0, 0), (10, 10)))], True, "has 2 points; a zone has 3 to 32"),
        (
            [CountingZone("many", tuple((n, n % 2) for n in range(33)))],
            True,
            "has 33 points; a zone has 3 to 32",
        ),
        ([CountingZone("flat", ((0, 0), (5, 5), (10, 10)))], True, "encloses no area"),
        (
            [CountingZone("bow tie", ((0, 0), (20, 20), (20, 0), (0, 10)))],
            True,
            "counting zone 'bow tie' has edges that cross: give its corners in order around it",
        ),
        (
            [CountingZone("pinched", ((0, 0), (10, 0), (10, 10), (5, 0)))],
            True,
            "'pinched' has edges that cross",
        ),
        ([CountingZone("nan", ((0, 0), (float("nan"), 5), (5, 9)))], True, "no number"),
        ([CountingZone("inf", ((0, 0), (float("inf"), 5), (5, 9)))], True, "no number"),
    ],
)
def test_zones_a_job_may_not_count_are_refused_saying_why(zones, tracked, message):
    with pytest.raises(InvalidArgument, match=message):
        checked_zones(zones, tracked=tracked)


@pytest.mark.parametrize(
    "polygon",
    [
        pytest.param(((0, 0), (100, 0), (100, 100), (50, 20), (0, 100)), id="concave"),
        pytest.param(((0, 0), (50, 0), (100, 0), (100, 100), (0, 100)), id="corner-on-an-edge"),
        pytest.param(((0, 0), (100, 0), (100, 100), (0, 0)), id="closed-ring"),
    ],
)
def test_simple_zones_of_any_shape_are_taken(polygon):
    """Only crossing or touching edges are refused: a concave zone, a corner placed along an
    edge, or the first corner given again at the end are zones as drawn."""
    zone = CountingZone("bay", polygon)
    assert checked_zones([zone], tracked=True) == (zone,)


def test_a_zone_must_stay_inside_a_picture_of_known_size():
    assert checked_zones([LEFT], tracked=True, frame_size=(640, 480)) == (LEFT,)
    with pytest.raises(InvalidArgument, match="counting zone 'left' leaves the 320x240 picture"):
        checked_zones([LEFT], tracked=True, frame_size=(320, 240))
    assert checked_zones([], tracked=False) == ()


# ---- zones in a stream over the real Triton ------------------------------------------------


def _zone(name: str, x1: float, x2: float) -> detection_pb2.CountingZone:
    """A full-height band of the 640x480 picture from x1 to x2."""
    corners = ((x1, 0), (x2, 0), (x2, 480), (x1, 480))
    return detection_pb2.CountingZone(
        name=name, polygon=[detection_pb2.Point(x=x, y=y) for x, y in corners]
    )


def _bus(objects):
    (bus,) = [o for o in objects if o.class_name == "bus"]
    return bus


async def _bus_feet_x_halfway(harness, user) -> float:
    """An x the panned bus's bottom centre passes between its first and last frame, read from
    an untracked stream's own boxes so that it does not depend on exactly what the model sees."""
    replies = await detect_stream(harness, user, panned_jpegs(), track=False)
    first, last = (
        (_bus(replies[n].result.objects).box.x1 + _bus(replies[n].result.objects).box.x2) / 2
        for n in (0, -1)
    )
    assert last - first > 20, "the bus moves right through the pan"
    return (first + last) / 2


async def test_a_stream_with_zones_names_the_zones_each_object_stands_in(detection, user):
    x = await _bus_feet_x_halfway(detection, user)
    zones = [_zone("everywhere", 0, 640), _zone("east", x, 640)]
    replies = await detect_stream(detection, user, panned_jpegs(), track=True, zones=zones)
    assert [r.sequence for r in replies] == list(range(PAN_FRAMES))
    assert all(not r.error for r in replies)
    for reply in replies:
        for obj in reply.result.objects:
            feet_x = (obj.box.x1 + obj.box.x2) / 2
            expected = ["everywhere", "east"] if feet_x > x + 1 else ["everywhere"]
            if abs(feet_x - x) > 1:  # on the edge itself either answer is right
                assert list(obj.zones) == expected, (reply.sequence, obj)
    bus_in_east = ["east" in _bus(r.result.objects).zones for r in replies]
    assert bus_in_east[0] is False and bus_in_east[-1] is True
    assert bus_in_east == sorted(bus_in_east), "once in, it stays in as it moves on"


async def test_a_stream_asking_for_zones_without_tracking_is_refused(detection, user):
    first = detection_pb2.Frame(
        sequence=0,
        image=detection_pb2.ImageInput(data=panned_jpegs()[0], filename="pan-0.jpg"),
        frame_rate=10,
        zones=[_zone("all", 0, 640)],
    )
    code, details = await stream_refusal(detection, user, first)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "counting zones need tracking" in details


# ---- zones in a video job ------------------------------------------------------------------


def _counts_from_frames(frames: list[detection_pb2.VideoFrame]) -> dict[tuple[str, str], tuple]:
    """(visited, peak, mean stay) per (zone, class), worked out from the stored frames."""
    inside_per_frame: dict[tuple[str, str], list[int]] = defaultdict(list)
    seen_at: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for frame in frames:
        here: dict[tuple[str, str], int] = defaultdict(int)
        for obj in frame.objects:
            for zone in obj.zones:
                here[(zone, obj.class_name)] += 1
                if obj.HasField("track_id"):
                    seen_at[(zone, obj.class_name, obj.track_id)].append(frame.timestamp_seconds)
        for key, inside in here.items():
            inside_per_frame[key].append(inside)
    stays: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (zone, name, _track), seconds in seen_at.items():
        stays[(zone, name)].append(max(seconds) - min(seconds))
    return {
        key: (
            len(stays[key]),
            max(inside),
            round(statistics.fmean(stays[key]), 3) if stays[key] else 0.0,
        )
        for key, inside in inside_per_frame.items()
    }


async def _progress_events(harness, job_id: str) -> list[notification_pb2.JobProgress]:
    """The job's progress events as staged in the outbox, by frames processed."""
    async with harness.service.engine.connect() as conn:
        payloads = await conn.scalars(
            sa.select(OUTBOX.c.payload).where(
                OUTBOX.c.event_type == "job.progress",
                OUTBOX.c.payload["jobProgress"]["jobId"].astext == job_id,
            )
        )
        events = [
            json_format.ParseDict(payload["jobProgress"], notification_pb2.JobProgress())
            for payload in payloads
        ]
    return sorted(events, key=lambda event: event.processed)


async def test_a_running_video_jobs_progress_carries_its_counts_so_far(
    make_harness, user, panned_video
):
    """With VIDEO_LIVE_COUNTS_SECONDS=0 every commit's progress event carries the zone counts
    over the frames committed by then: they only grow, and the last are the final ones. A
    job that counts nothing carries none."""
    harness = await make_harness(VIDEO_LIVE_COUNTS_SECONDS=0, VIDEO_FRAMES_IN_FLIGHT=2)
    zones = [_zone("everywhere", 0, 640)]
    counting = await submit_video_job(harness, user, panned_video, track=True, zones=zones)
    plain = await submit_video_job(harness, user, panned_video, track=True)
    job = await finished_job(harness, user, counting.id)
    assert (await finished_job(harness, user, plain.id)).status == (
        detection_pb2.JOB_STATUS_COMPLETED
    )

    progress = await _progress_events(harness, counting.id)
    assert len(progress) >= 2, "several commits, each with its own progress event"
    assert all(event.HasField("counts") for event in progress)
    visited = [sum(count.visited for count in event.counts.zone_counts) for event in progress]
    assert visited == sorted(visited)
    assert list(progress[-1].counts.zone_counts) == list(job.video.zone_counts)
    assert list(job.video.zone_counts), "the bus was counted"
    assert not any(event.HasField("counts") for event in await _progress_events(harness, plain.id))


async def test_a_video_job_with_zones_stores_each_objects_zones_and_counts_them(
    detection, user, panned_video
):
    x = await _bus_feet_x_halfway(detection, user)
    zones = [_zone("everywhere", 0, 640), _zone("east", x, 640)]
    submitted = await submit_video_job(detection, user, panned_video, track=True, zones=zones)
    assert list(submitted.video.zones) == zones
    job = await finished_job(detection, user, submitted.id)
    assert job.status == detection_pb2.JOB_STATUS_COMPLETED, job
    assert job.video.annotated_available
    frames = await video_frames_of(detection, user, submitted.id)
    assert len(frames) == PAN_FRAMES

    counted = {
        (count.zone, count.class_name): (
            count.visited,
            count.peak,
            pytest.approx(count.mean_stay_seconds, abs=1e-3),
        )
        for count in job.video.zone_counts
    }
    assert counted == _counts_from_frames(frames)
    # The bus is one visitor of both zones, alone of its class in each frame; tracked from
    # its second frame (0.1 s) to the last (0.7 s), it stayed everywhere 0.6 s.
    visited, peak, stay = counted[("everywhere", "bus")]
    assert (visited, peak) == (1, 1)
    assert stay == pytest.approx(0.6, abs=1e-3)
    assert counted[("east", "bus")][:2] == (1, 1)
    assert job.video.zone_counts[0].zone == "everywhere", "in the order the zones were given"
    # The final event says the same, for the webhook, the WebSocket and the report email.
    finished = await final_event(detection, submitted.id)
    assert list(finished.zone_counts) == list(job.video.zone_counts)
    assert list(finished.line_counts) == []


async def test_a_video_job_whose_zone_leaves_the_picture_is_refused_and_keeps_nothing(
    detection, user, panned_video
):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await submit_video_job(
            detection, user, panned_video, track=True, zones=[_zone("wide", 0, 900)]
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "counting zone 'wide' leaves the 640x480 picture" in (refused.value.details() or "")
    listed = await detection.stub.ListJobs(
        detection_pb2.ListJobsRequest(), metadata=detection.metadata(user), timeout=30
    )
    assert list(listed.jobs) == []
