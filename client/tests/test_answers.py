"""What the client makes of a successful answer: the documented bodies become typed models,
and a body in any other shape becomes ObjectVisionError (code `unexpected_response`), never a
KeyError or a JSON decoding traceback.

The answers come from a real HTTP server on a local port, standing where the gateway would:
a proxy's login page, another service at the API URL or a gateway of another version is what
a user meets in practice.
"""

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

import pytest

from objectvision_client import (
    AsyncClient,
    Client,
    CountingLine,
    CountingZone,
    Job,
    LineCount,
    LineCrossing,
    ObjectVisionError,
    VideoFramesPage,
    ZoneCount,
    operations,
)

DETECTION = {
    "detection_id": "d-1",
    "filename": "bus.jpg",
    "image": {"width": 810, "height": 1080},
    "detections": [
        {
            "class": "bus",
            "class_id": 5,
            "confidence": 0.87,
            "bbox": {"x1": 1.5, "y1": 2.0, "x2": 101.5, "y2": 52.0},
        },
        {
            "class": "person",
            "class_id": 0,
            "confidence": 0.8,
            "bbox": {"x1": 0, "y1": 0, "x2": 10, "y2": 30},
        },
    ],
    "timings": {"total_ms": 12.5},
    "model": "yolov8n",
    "model_version": "1",
    "cached": False,
    "field_from_a_newer_gateway": {"kept": "in raw"},
}


class Answers:
    """The body (bytes and content type) the server gives each path, set by each test."""

    def __init__(self) -> None:
        self.by_path: dict[str, tuple[int, str, bytes]] = {}

    def json(self, path: str, body: object, status: int = 200) -> None:
        self.by_path[path] = (status, "application/json", json.dumps(body).encode())

    def text(self, path: str, body: str, content_type: str = "text/html") -> None:
        self.by_path[path] = (200, content_type, body.encode())


@pytest.fixture
def server(
    local_server: Callable[[Callable[[BaseHTTPRequestHandler], None]], str],
) -> tuple[str, Answers]:
    answers = Answers()

    def respond(request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        request.rfile.read(length)
        status, content_type, body = answers.by_path.get(
            request.path.split("?")[0], (404, "text/plain", b"no such path")
        )
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("X-Request-ID", "req-from-the-server")
        request.end_headers()
        request.wfile.write(body)

    return local_server(respond), answers


def test_a_detection_body_becomes_typed_objects_and_keeps_what_it_does_not_know(
    server: tuple[str, Answers],
) -> None:
    url, answers = server
    answers.json("/api/v1/detect/image", DETECTION)
    with Client(url, api_key="ov_test") as client:
        result = client.detect_image(("bus.jpg", b"\xff\xd8\xff"))
    assert (result.detection_id, result.width, result.height) == ("d-1", 810, 1080)
    assert [obj.class_name for obj in result.objects] == ["bus", "person"]
    assert result.objects[0].bbox.width == 100.0
    assert result.objects[1].bbox.height == 30.0
    assert [obj.track_id for obj in result.objects] == [None, None], "images are not tracked"
    assert result.total_ms == 12.5
    assert result.class_counts() == {"bus": 1, "person": 1}
    assert result.raw["field_from_a_newer_gateway"] == {"kept": "in raw"}


def test_absent_optional_fields_take_their_defaults(server: tuple[str, Answers]) -> None:
    url, answers = server
    answers.json(
        "/api/v1/detect/jobs/j-1",
        {"job_id": "j-1", "created_at": "2026-12-05T04:00:00Z", "completed_at": None},
    )
    with Client(url, api_key="ov_test") as client:
        job = client.get_job("j-1")
    assert (job.status, job.total, job.items, job.kind, job.video) == (
        "pending",
        0,
        (),
        "batch",
        None,
    )
    assert job.created_at == datetime(2026, 12, 5, 4, 0, tzinfo=UTC)
    assert job.completed_at is None
    assert not job.done


def test_list_answers_keep_each_item_body(server: tuple[str, Answers]) -> None:
    url, answers = server
    key = {
        "id": "k-1",
        "name": "ci",
        "prefix": "ov_ab",
        "created_at": "2026-12-05T04:00:00+00:00",
        "last_used_at": None,
        "revoked_at": None,
    }
    answers.json("/api/v1/users/me/api-keys", {"items": [key]})
    with Client(url, api_key="ov_test") as client:
        (listed,) = client.list_api_keys()
    assert (listed.id, listed.name, listed.revoked_at) == ("k-1", "ci", None)
    assert listed.raw == key


def test_a_jobs_page_and_a_cancelled_job_become_typed_answers(
    server: tuple[str, Answers],
) -> None:
    url, answers = server
    cancelled = {
        "job_id": "j-2",
        "status": "cancelled",
        "total": 3,
        "processed": 1,
        "failed": 0,
        "items": [
            {"filename": "a.jpg", "status": "completed", "detection_id": "d-1", "object_count": 5},
            {"filename": "b.jpg", "status": "cancelled", "detection_id": None, "error": None},
        ],
        "created_at": "2026-12-05T04:00:00Z",
        "completed_at": "2026-12-05T04:01:00Z",
        "kind": "batch",
    }
    video = {
        "job_id": "j-3",
        "status": "processing",
        "total": 40,
        "processed": 8,
        "created_at": "2026-12-05T04:02:00Z",
        "kind": "video",
        "video": {
            "filename": "street.mp4",
            "container": "mp4",
            "codec": "h264",
            "width": 640,
            "height": 480,
            "duration_seconds": 4.0,
            "frame_rate": 10.0,
            "frame_count": 40,
            "sampled_frames": 40,
            "sampling": {"fps": None, "every": 1},
            "tracked": True,
        },
    }
    summary = {key: value for key, value in cancelled.items() if key != "items"}
    answers.json(
        "/api/v1/detect/jobs", {"items": [video, summary], "total": 7, "limit": 2, "offset": 0}
    )
    answers.json("/api/v1/detect/jobs/j-2/cancel", cancelled)
    with Client(url, api_key="ov_test") as client:
        page = client.list_jobs(limit=2, status="cancelled", kind="batch")
        stopped = client.cancel_job("j-2")
    assert (page.total, page.limit, [job.job_id for job in page.items]) == (7, 2, ["j-3", "j-2"])
    listed_video, listed_batch = page.items
    assert listed_video.video is not None and listed_video.video.filename == "street.mp4"
    assert listed_video.video.tracked and listed_video.video.every == 1
    assert not listed_video.done and listed_batch.items == ()
    assert listed_batch.raw == summary
    # Cancelled is final: waiting for the job ends there.
    assert stopped.done and stopped.status == "cancelled"
    assert [item.status for item in stopped.items] == ["completed", "cancelled"]


def test_a_tracked_videos_frames_carry_track_ids(server: tuple[str, Answers]) -> None:
    url, answers = server
    bus, person = DETECTION["detections"]
    frame = {"frame_index": 1, "timestamp_seconds": 0.1, "timestamp_ms": 100, "error": None}
    answers.json(
        "/api/v1/detect/jobs/j-3/frames",
        {
            "job_id": "j-3",
            "width": 640,
            "height": 480,
            "frames": [
                {**frame, "detections": [{**bus, "track_id": 0}, {**person, "track_id": None}]}
            ],
            "total": 1,
            "limit": 100,
            "offset": 0,
        },
    )
    with Client(url, api_key="ov_test") as client:
        (listed,) = client.video_frames("j-3").frames
    assert [(obj.class_name, obj.track_id) for obj in listed.detections] == [
        ("bus", 0),
        ("person", None),
    ]


@pytest.mark.parametrize(("track", "sent"), [(True, {"track": "true"}), (False, {})])
def test_submitting_a_video_sends_track_only_when_asked(track: bool, sent: dict) -> None:
    operation = operations.submit_video(("street.mp4", b"video"), every=1, track=track)
    assert dict(operation.data or {}) == {"every": "1", **sent}


COUNTED_VIDEO = {
    "filename": "street.mp4",
    "container": "mp4",
    "codec": "h264",
    "width": 1280,
    "height": 720,
    "duration_seconds": 4.0,
    "frame_rate": 10.0,
    "frame_count": 40,
    "sampled_frames": 40,
    "sampling": {"fps": None, "every": 1},
    "tracked": True,
    "lines": [
        {"name": "gate", "start": [0, 360], "end": [1280, 360]},
        {"name": "door", "start": [640, 0], "end": [640, 720]},
    ],
    "line_counts": [
        {"line": "gate", "class_id": 0, "class_name": "person", "crossed_in": 3, "crossed_out": 1}
    ],
}


def _serve_video_job(answers: Answers, job_id: str, video: dict, frames: list[dict]) -> None:
    """A completed video job and its one page of `frames`, as the API gives them."""
    base = f"/api/v1/detect/jobs/{job_id}"
    answers.json(base, {"job_id": job_id, "status": "completed", "kind": "video", "video": video})
    page = {"job_id": job_id, "width": 1280, "height": 720, "frames": frames}
    answers.json(f"{base}/frames", {**page, "total": len(frames), "limit": 100, "offset": 0})


def _read_video_job(url: str, job_id: str) -> tuple[Job, VideoFramesPage]:
    """The job as Client reads it, checked to be what AsyncClient reads, and its frames as
    AsyncClient reads them."""

    async def read() -> tuple[Job, VideoFramesPage]:
        async with AsyncClient(url, api_key="ov_test") as client:
            return await client.get_job(job_id), await client.video_frames(job_id)

    with Client(url, api_key="ov_test") as client:
        job = client.get_job(job_id)
    async_job, page = asyncio.run(read())
    assert job == async_job
    return job, page


def test_a_counted_video_job_and_its_frames_carry_lines_counts_and_crossings(
    server: tuple[str, Answers],
) -> None:
    url, answers = server
    bus, _ = DETECTION["detections"]
    crossing = {"line": "gate", "track_id": 0, "class_id": 5, "class_name": "bus"}
    _serve_video_job(
        answers,
        "j-4",
        COUNTED_VIDEO,
        [
            {
                "frame_index": 7,
                "timestamp_seconds": 0.7,
                "timestamp_ms": 700,
                "error": None,
                "detections": [{**bus, "track_id": 0}],
                "crossings": [{**crossing, "direction": "in"}],
            },
            {
                "frame_index": 8,
                "timestamp_seconds": 0.8,
                "timestamp_ms": 800,
                "error": None,
                "detections": [],
            },
        ],
    )

    job, page = _read_video_job(url, "j-4")

    assert job.video is not None
    assert job.video.lines == (
        CountingLine(name="gate", start=(0, 360), end=(1280, 360)),
        CountingLine(name="door", start=(640, 0), end=(640, 720)),
    )
    assert job.video.line_counts == (
        LineCount(line="gate", class_id=0, class_name="person", crossed_in=3, crossed_out=1),
    )
    crossed, quiet = page.frames
    assert crossed.crossings == (LineCrossing(**crossing, direction="in"),)
    assert quiet.crossings == ()


@pytest.mark.parametrize(
    ("lines", "sent"),
    [
        (
            [
                CountingLine(name="gate", start=(0, 360), end=(1280, 360.5)),
                CountingLine(name="door", start=(640, 0), end=(640, 720)),
            ],
            {
                "lines": '[{"name": "gate", "start": [0.0, 360.0], "end": [1280.0, 360.5]}, '
                '{"name": "door", "start": [640.0, 0.0], "end": [640.0, 720.0]}]'
            },
        ),
        ([], {}),
        (None, {}),
    ],
)
def test_submitting_a_video_sends_counting_lines_as_json_only_when_given(
    lines: list[CountingLine] | None, sent: dict
) -> None:
    operation = operations.submit_video(("street.mp4", b"video"), every=1, track=True, lines=lines)
    assert dict(operation.data or {}) == {"every": "1", "track": "true", **sent}
    if lines:
        assert CountingLine(**json.loads(sent["lines"])[0]) == lines[0]


ZONED_VIDEO = {
    **COUNTED_VIDEO,
    "lines": [],
    "line_counts": [],
    "zones": [
        {"name": "queue", "polygon": [[0, 0], [640, 0], [640, 200], [0, 200]]},
        {"name": "bay", "polygon": [[700, 400], [1280, 400], [1280, 720]]},
    ],
    "zone_counts": [
        {
            "zone": "queue",
            "class_id": 0,
            "class_name": "person",
            "visited": 4,
            "peak": 2,
            "mean_stay_seconds": 1.5,
        }
    ],
}


def test_a_zoned_video_job_and_its_frames_carry_zones_counts_and_each_objects_zones(
    server: tuple[str, Answers],
) -> None:
    url, answers = server
    bus, person = DETECTION["detections"]
    _serve_video_job(
        answers,
        "j-5",
        ZONED_VIDEO,
        [
            {
                "frame_index": 3,
                "timestamp_seconds": 0.3,
                "timestamp_ms": 300,
                "error": None,
                "detections": [
                    {**person, "track_id": 1, "zones": ["queue", "bay"]},
                    {**bus, "track_id": 0, "zones": []},
                ],
            }
        ],
    )

    job, page = _read_video_job(url, "j-5")

    assert job.video is not None
    assert job.video.zones == (
        CountingZone(name="queue", polygon=((0, 0), (640, 0), (640, 200), (0, 200))),
        CountingZone(name="bay", polygon=((700, 400), (1280, 400), (1280, 720))),
    )
    assert job.video.zone_counts == (
        ZoneCount(
            zone="queue",
            class_id=0,
            class_name="person",
            visited=4,
            peak=2,
            mean_stay_seconds=1.5,
        ),
    )
    (frame,) = page.frames
    assert [(obj.class_name, obj.zones) for obj in frame.detections] == [
        ("person", ("queue", "bay")),
        ("bus", ()),
    ]


def test_an_answer_from_a_gateway_without_zones_reads_as_no_zones(
    server: tuple[str, Answers],
) -> None:
    url, answers = server
    _serve_video_job(answers, "j-6", COUNTED_VIDEO, [])
    job, _ = _read_video_job(url, "j-6")
    assert job.video is not None
    assert (job.video.zones, job.video.zone_counts) == ((), ())


@pytest.mark.parametrize(
    ("zones", "sent"),
    [
        (
            [
                CountingZone(name="queue", polygon=((0, 0), (640, 0), (640, 200.5))),
                CountingZone(name="bay", polygon=((700, 400), (1280, 400), (1280, 720))),
            ],
            {
                "zones": '[{"name": "queue", "polygon": [[0.0, 0.0], [640.0, 0.0], [640.0, 200.5]]}'
                ', {"name": "bay", "polygon": [[700.0, 400.0], [1280.0, 400.0], [1280.0, 720.0]]}]'
            },
        ),
        ([], {}),
        (None, {}),
    ],
)
def test_submitting_a_video_sends_counting_zones_as_json_only_when_given(
    zones: list[CountingZone] | None, sent: dict
) -> None:
    operation = operations.submit_video(("street.mp4", b"video"), every=1, track=True, zones=zones)
    assert dict(operation.data or {}) == {"every": "1", "track": "true", **sent}
    if zones:
        assert CountingZone(**json.loads(sent["zones"])[0]) == zones[0]


def test_a_webhooks_deliveries_and_a_redelivery_become_typed_answers(
    server: tuple[str, Answers],
) -> None:
    url, answers = server
    dead = {
        "id": "d-1",
        "webhook_id": "w-1",
        "event_id": "e-1",
        "event_type": "job.completed",
        "state": "dead",
        "attempts": 8,
        "last_attempt_at": "2026-12-05T04:10:00Z",
        "last_status_code": 503,
        "last_error": "receiver answered 503",
        "next_attempt_at": None,
        "created_at": "2026-12-05T04:00:00Z",
        "delivered_at": None,
        "redelivery_of": None,
    }
    queued = {
        **dead,
        "id": "d-2",
        "state": "pending",
        "attempts": 0,
        "last_attempt_at": None,
        "last_status_code": None,
        "last_error": None,
        "next_attempt_at": "2026-12-05T05:00:00Z",
        "created_at": "2026-12-05T05:00:00Z",
        "redelivery_of": "d-1",
    }
    answers.json(
        "/api/v1/webhooks/w-1/deliveries",
        {"items": [dead], "total": 7, "limit": 1, "offset": 0},
    )
    answers.json("/api/v1/webhooks/w-1/deliveries/d-1/redeliver", queued, status=202)
    with Client(url, api_key="ov_test") as client:
        page = client.list_webhook_deliveries("w-1", state="dead", limit=1)
        again = client.redeliver("w-1", "d-1")
    (listed,) = page.items
    assert (page.total, page.limit, page.offset) == (7, 1, 0)
    assert (listed.state, listed.attempts, listed.last_status_code) == ("dead", 8, 503)
    assert listed.last_attempt_at == datetime(2026, 12, 5, 4, 10, tzinfo=UTC)
    assert listed.next_attempt_at is None and listed.raw == dead
    assert (again.id, again.state, again.redelivery_of) == ("d-2", "pending", "d-1")
    assert (again.event_id, again.last_status_code) == ("e-1", None)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        pytest.param(
            ("text", "<html><body>Sign in to the proxy</body></html>"),
            "Expecting value",
            id="a proxy's HTML page",
        ),
        pytest.param(
            ("json", {"status": "ok"}), "filename: Field required", id="JSON of another service"
        ),
        pytest.param(
            ("json", {**DETECTION, "detections": [{"class": "bus"}]}),
            "detections.0.class_id: Field required",
            id="an object without its fields",
        ),
        pytest.param(
            ("json", {**DETECTION, "image": {"width": "wide", "height": 1}}),
            "image.width",
            id="a width that is not a number",
        ),
        pytest.param(("json", ["not", "an", "object"]), "", id="a list for an object"),
    ],
)
def test_a_successful_status_with_a_body_in_another_shape_is_an_api_error(
    server: tuple[str, Answers], answer: tuple[str, object], problem: str
) -> None:
    url, answers = server
    kind, body = answer
    if kind == "text":
        answers.text("/api/v1/detect/image", str(body))
    else:
        answers.json("/api/v1/detect/image", body)
    with Client(url, api_key="ov_test") as client, pytest.raises(ObjectVisionError) as raised:
        client.detect_image(("bus.jpg", b"\xff\xd8\xff"))
    error = raised.value
    assert (error.status, error.code, error.request_id) == (
        200,
        "unexpected_response",
        "req-from-the-server",
    )
    assert error.message.startswith("POST /api/v1/detect/image answered with a body this client")
    assert problem in error.message
    assert "compatible version" in str(error)


def test_the_async_client_reports_it_the_same_way(server: tuple[str, Answers]) -> None:
    url, answers = server
    answers.json("/api/v1/users/me", {"id": "u-1", "email": "a@example.com"})

    async def me() -> None:
        async with AsyncClient(url, api_key="ov_test") as client:
            await client.me()

    with pytest.raises(ObjectVisionError) as raised:
        asyncio.run(me())
    assert raised.value.code == "unexpected_response"
    assert "name: Field required" in raised.value.message
