"""Tables and the progress bar of the CLI (pure formatting)."""

import io
from datetime import UTC, datetime

import pytest

from objectvision_client.cli import (
    annotated_path,
    counts_so_far,
    describe_error,
    detections_table,
    job_table,
    jobs_table,
    line_counts_table,
    video_frames_table,
    zone_counts_table,
)
from objectvision_client.errors import ObjectVisionError
from objectvision_client.models import DetectionResult, Job, VideoFrame, VideoInfo
from objectvision_client.output import ProgressBar, format_table, render_progress


def test_columns_are_padded_to_the_widest_cell() -> None:
    table = format_table(["NAME", "N"], [["bus", 1], ["person", 12]], right=(1,))
    assert table.splitlines() == [
        "NAME     N",
        "bus      1",
        "person  12",
    ]


def test_none_prints_as_a_dash_and_trailing_spaces_are_trimmed() -> None:
    table = format_table(["A", "B"], [["x", None], ["longer", ""]])
    assert table.splitlines() == ["A       B", "x       -", "longer"]


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        format_table(["A", "B", "C"], [["x", "y"]])


def test_detections_table_lists_every_object_and_empty_images() -> None:
    bus = DetectionResult.from_json(
        {
            "detection_id": "d1",
            "filename": "bus.jpg",
            "image": {"width": 810, "height": 1080},
            "detections": [
                {
                    "class": "bus",
                    "class_id": 5,
                    "confidence": 0.8312,
                    "bbox": {"x1": 34.4, "y1": 230.0, "x2": 800.2, "y2": 770.6},
                }
            ],
            "timings": {"total_ms": 40.0},
        }
    )
    empty = DetectionResult.from_json(
        {"filename": "sky.jpg", "image": {"width": 64, "height": 48}, "detections": []}
    )
    lines = detections_table([("bus.jpg", bus), ("sky.jpg", empty)]).splitlines()
    assert lines[0].split() == ["FILE", "CLASS", "CONFIDENCE", "X1", "Y1", "X2", "Y2"]
    assert lines[1].split() == ["bus.jpg", "bus", "0.83", "34", "230", "800", "771"]
    assert lines[2].split() == ["sky.jpg", "(none)", "-", "-", "-", "-", "-"]


def _found(name: str, track_id: int | None = None, zones: tuple[str, ...] = ()) -> dict:
    box = {"x1": 0, "y1": 0, "x2": 10, "y2": 10}
    return {
        "class": name,
        "class_id": 0,
        "confidence": 0.9,
        "bbox": box,
        "track_id": track_id,
        "zones": list(zones),
    }


def test_video_frames_table_shows_track_ids_before_the_class_and_zones_after() -> None:
    frames = [
        VideoFrame.from_json(
            {
                "frame_index": index,
                "timestamp_seconds": index / 10,
                "timestamp_ms": index * 100,
                "detections": detections,
            }
        )
        for index, detections in enumerate(
            [
                [_found("bus"), _found("person"), _found("person")],
                [_found("person", 4), _found("bus", 0), _found("person")],
                [_found("bus", 0, ("road", "bay")), _found("person", 4, ("road",))],
                [],
            ]
        )
    ]
    lines = video_frames_table(frames).splitlines()
    assert lines[0].split() == ["FRAME", "TIME", "(S)", "OBJECTS"]
    assert [line.split(maxsplit=2)[2] for line in lines[1:]] == [
        "bus, person x2",
        "#0 bus, #4 person, person",
        "#0 bus [road, bay], #4 person [road]",
        "(none)",
    ]


def test_job_table_shows_detection_ids_and_errors() -> None:
    job = Job.from_json(
        {
            "job_id": "j1",
            "status": "completed",
            "total": 2,
            "processed": 2,
            "failed": 1,
            "items": [
                {
                    "filename": "a.jpg",
                    "status": "completed",
                    "detection_id": "d1",
                    "object_count": 3,
                },
                {
                    "filename": "b.jpg",
                    "status": "failed",
                    "error": "not an image",
                    "object_count": 0,
                },
            ],
            "created_at": datetime(2026, 1, 1, tzinfo=UTC).isoformat(),
        }
    )
    lines = job_table(job).splitlines()
    assert lines[1].split() == ["a.jpg", "completed", "3", "d1"]
    assert lines[2].split() == ["b.jpg", "failed", "-", "not", "an", "image"]


@pytest.mark.parametrize(
    ("done", "total", "expected"),
    [
        (0, 4, "[----------] 0/4   0%"),
        (1, 4, "[##--------] 1/4  25%"),
        (4, 4, "[##########] 4/4 100%"),
        (9, 4, "[##########] 4/4 100%"),
        (0, 0, "[----------] 0/0   0%"),
    ],
)
def test_progress_rendering(done: int, total: int, expected: str) -> None:
    assert render_progress(done, total, width=10) == expected


def test_progress_bar_prints_a_line_per_change_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, label="job")
    bar.update(0, 2)
    bar.update(0, 2)
    bar.update(2, 2, "completed")
    bar.finish()
    assert stream.getvalue().splitlines() == [
        "job [------------------------------] 0/2   0%",
        "job [##############################] 2/2 100% completed",
    ]


def test_annotated_paths_never_collide(tmp_path) -> None:
    taken: set = set()
    first = annotated_path(tmp_path, "a/bus.jpg", taken)
    second = annotated_path(tmp_path, "b/bus.png", taken)
    assert (first.name, second.name) == ("bus.annotated.jpg", "bus-2.annotated.jpg")


def test_error_messages_say_what_to_do() -> None:
    expired = ObjectVisionError(401, "invalid_token", "the access token has expired", "r1")
    assert describe_error(expired, "http://api") == (
        "the access token has expired. Run `objectvision login --api-url http://api` to log in "
        "again (HTTP 401 invalid_token, request id r1)"
    )
    wrong_key = describe_error(expired, "http://api", credentials="api-key")
    assert wrong_key.startswith("the access token has expired. Check OBJECTVISION_API_KEY")
    wrong_password = ObjectVisionError(401, "unauthenticated", "incorrect email or password", "r2")
    assert describe_error(wrong_password, "http://api", credentials="none") == (
        "incorrect email or password (HTTP 401 unauthenticated, request id r2)"
    )
    limited = ObjectVisionError(429, "rate_limited", "too many attempts", None, retry_after=42)
    assert describe_error(limited, "http://api") == (
        "too many attempts. Try again in 42 s (HTTP 429 rate_limited)"
    )


def test_an_api_keys_refusals_say_what_the_key_lacks() -> None:
    lacking = ObjectVisionError(
        403, "insufficient_scope", "this API key lacks the 'webhooks' scope this needs", "r3"
    )
    assert describe_error(lacking, "http://api", credentials="api-key") == (
        "this API key lacks the 'webhooks' scope this needs. The key in OBJECTVISION_API_KEY "
        "lacks the scope this needs: log in and create a key that has it (`objectvision keys "
        "create NAME --scope SCOPE`) (HTTP 403 insufficient_scope, request id r3)"
    )
    account = ObjectVisionError(403, "session_required", "an API key cannot do this", None)
    assert describe_error(account, "http://api", credentials="api-key") == (
        "an API key cannot do this. This needs a logged-in session, not an API key: unset "
        "OBJECTVISION_API_KEY and run `objectvision login --api-url http://api` "
        "(HTTP 403 session_required)"
    )
    expired = ObjectVisionError(401, "api_key_expired", "the API key has expired", None)
    assert describe_error(expired, "http://api", credentials="api-key").startswith(
        "the API key has expired. Create a new key (`objectvision keys create`)"
    )
    # A session's 403 (a wrong password) is left as the server said it.
    wrong = ObjectVisionError(403, "permission_denied", "the current password is wrong", None)
    assert describe_error(wrong, "http://api") == (
        "the current password is wrong (HTTP 403 permission_denied)"
    )


def _counted_video(line_counts: list[dict]) -> dict:
    return {
        "container": "mp4",
        "codec": "h264",
        "width": 1280,
        "height": 720,
        "duration_seconds": 4.0,
        "frame_rate": 10.0,
        "frame_count": 40,
        "sampled_frames": 40,
        "tracked": True,
        "lines": [
            {"name": "gate", "start": [0, 360], "end": [1280, 360]},
            {"name": "side door", "start": [640, 0], "end": [640, 720]},
        ],
        "line_counts": line_counts,
    }


def _count(line: str, class_name: str, crossed_in: int, crossed_out: int) -> dict:
    return {
        "line": line,
        "class_id": 0,
        "class_name": class_name,
        "crossed_in": crossed_in,
        "crossed_out": crossed_out,
    }


def test_line_counts_table_shows_every_line_in_order_by_class() -> None:
    """A line nothing crossed still has its row, so no line seems forgotten."""
    video = VideoInfo.from_json(
        _counted_video([_count("gate", "person", 3, 1), _count("gate", "bus", 0, 2)])
    )
    assert line_counts_table(video).splitlines() == [
        "LINE       CLASS   IN  OUT",
        "gate       bus      0    2",
        "gate       person   3    1",
        "side door  -        0    0",
    ]


def test_a_video_jobs_table_ends_with_its_line_counts_when_it_has_lines() -> None:
    base = {"job_id": "j1", "status": "completed", "kind": "video", "items": []}
    counted = Job.from_json({**base, "video": _counted_video([_count("gate", "bus", 1, 0)])})
    uncounted = Job.from_json({**base, "video": {**_counted_video([]), "lines": []}})

    assert job_table(counted).splitlines()[2:] == [
        "LINE       CLASS  IN  OUT",
        "gate       bus     1    0",
        "side door  -       0    0",
    ]
    assert "LINE" not in job_table(uncounted)


def _zoned_video(zone_counts: list[dict]) -> dict:
    return {
        **_counted_video([]),
        "lines": [],
        "zones": [
            {"name": "queue", "polygon": [[0, 0], [640, 0], [640, 200], [0, 200]]},
            {"name": "loading bay", "polygon": [[700, 400], [1280, 400], [1280, 720]]},
        ],
        "zone_counts": zone_counts,
    }


def _zone_count(zone: str, class_name: str, visited: int, peak: int, stay: float) -> dict:
    return {
        "zone": zone,
        "class_id": 0,
        "class_name": class_name,
        "visited": visited,
        "peak": peak,
        "mean_stay_seconds": stay,
    }


def test_zone_counts_table_shows_every_zone_in_order_by_class() -> None:
    """A zone nobody entered still has its row, with no stay to average."""
    video = VideoInfo.from_json(
        _zoned_video(
            [_zone_count("queue", "person", 4, 2, 12.345), _zone_count("queue", "bus", 1, 1, 0)]
        )
    )
    assert zone_counts_table(video).splitlines() == [
        "ZONE         CLASS   VISITED  PEAK  MEAN STAY",
        "queue        bus           1     1      0.0 s",
        "queue        person        4     2     12.3 s",
        "loading bay  -             0     0          -",
    ]


def test_a_video_jobs_table_ends_with_its_line_and_zone_counts_when_it_has_them() -> None:
    base = {"job_id": "j1", "status": "completed", "kind": "video", "items": []}
    zoned = _zoned_video([_zone_count("queue", "person", 1, 1, 0.6)])
    both = Job.from_json(
        {**base, "video": {**zoned, "lines": _counted_video([])["lines"], "line_counts": []}}
    )
    only_zones = Job.from_json({**base, "video": zoned})

    line_table, zone_table = job_table(both).split("\n\n")[1:]
    assert line_table.splitlines()[0].split() == ["LINE", "CLASS", "IN", "OUT"]
    assert zone_table.splitlines()[1:] == [
        "queue        person        1     1      0.6 s",
        "loading bay  -             0     0          -",
    ]
    assert "LINE" not in job_table(only_zones) and "ZONE" in job_table(only_zones)


def test_a_video_jobs_counts_so_far_fit_on_its_progress_line() -> None:
    """Each region over every class; a region with nothing counted yet still shows."""
    video = VideoInfo.from_json(
        {
            **_counted_video([_count("gate", "person", 3, 1), _count("gate", "bus", 0, 2)]),
            "zones": [{"name": "queue", "polygon": [[0, 0], [640, 0], [640, 200]]}],
            "zone_counts": [_zone_count("queue", "person", 4, 2, 1.5)],
        }
    )
    assert counts_so_far(video) == "gate 3 in 3 out, side door 0 in 0 out, queue 4 visited"
    assert counts_so_far(VideoInfo.from_json({**_counted_video([]), "lines": []})) == ""
    assert counts_so_far(None) == ""


def test_a_jobs_list_shows_a_metadata_column_only_when_a_job_has_metadata() -> None:
    tagged = {"job_id": "j1", "status": "pending", "metadata": {"order": "A-1", "camera": "n"}}
    plain = {"job_id": "j2", "status": "completed"}

    with_pairs = jobs_table([Job.from_json(tagged), Job.from_json(plain)]).splitlines()
    assert with_pairs[0].split()[-1] == "METADATA"
    assert with_pairs[1].endswith("camera=n, order=A-1")
    assert "METADATA" not in jobs_table([Job.from_json(plain)])
