"""Live detection's pieces that need no server (ADR 0059): the settings message, the stream's
URL, answers read into LiveFrame, closes read as the REST routes' errors, and the command's
line per frame. The stream itself is tests/test_live_detect_api.py's, against the stack."""

import pytest

from objectvision_client import CountingLine, CountingZone, DetectionParams, LiveFrame
from objectvision_client.cli import live_frame_line
from objectvision_client.errors import ObjectVisionConnectionError, ObjectVisionError
from objectvision_client.live import live_url
from objectvision_client.operations import live_settings

DETECTIONS = {
    "type": "detections",
    "sequence": 3,
    "image": {"width": 640, "height": 480},
    "detections": [
        {
            "class": "person",
            "class_id": 0,
            "confidence": 0.9,
            "bbox": {"x1": 1, "y1": 2, "x2": 30, "y2": 90, "width": 29, "height": 88},
            "track_id": 7,
            "zones": ["queue"],
        },
        {
            "class": "bus",
            "class_id": 5,
            "confidence": 0.8,
            "bbox": {"x1": 10, "y1": 20, "x2": 300, "y2": 200, "width": 290, "height": 180},
            "track_id": 2,
            "zones": [],
        },
    ],
    "counts": {"person": 1, "bus": 1},
    "crossings": [
        {"line": "gate", "track_id": 2, "class_id": 5, "class_name": "bus", "direction": "in"}
    ],
    "timings": {
        "decode_ms": 1.0,
        "queue_ms": 2.0,
        "inference_ms": 8.0,
        "postprocess_ms": 0.5,
        "total_ms": 12.4,
    },
    "cached": False,
    "model": "yolov8n",
    "model_version": "1",
}


def test_the_settings_are_a_json_detect_bodys_parameters_and_a_video_jobs_choices() -> None:
    gate = CountingLine(name="gate", start=(0, 360), end=(1280, 360))
    queue = CountingZone(name="queue", polygon=((0, 0), (10, 0), (10, 10)))
    settings = live_settings(
        DetectionParams(confidence=0.4, classes=["person", "bus"], model="yolov8n"),
        track=True,
        frame_rate=12,
        lines=[gate],
        zones=[queue],
    )
    assert settings == {
        "confidence": 0.4,
        "classes": "person,bus",
        "model": "yolov8n",
        "track": True,
        "frame_rate": 12.0,
        "lines": [{"name": "gate", "start": [0, 360], "end": [1280, 360]}],
        "zones": [{"name": "queue", "polygon": [[0, 0], [10, 0], [10, 10]]}],
    }
    assert live_settings() == {}


@pytest.mark.parametrize(
    ("base_url", "url"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/api/v1/ws/detect"),
        ("https://vision.example.com/", "wss://vision.example.com/api/v1/ws/detect"),
        ("https://example.com/objectvision", "wss://example.com/objectvision/api/v1/ws/detect"),
    ],
)
def test_the_stream_opens_under_the_api_url(base_url: str, url: str) -> None:
    assert live_url(base_url) == url


def test_a_detected_frame_and_a_frame_error_are_read() -> None:
    frame = LiveFrame.from_json(DETECTIONS)
    assert (frame.sequence, frame.width, frame.height, frame.ok) == (3, 640, 480, True)
    assert [(obj.class_name, obj.track_id, obj.zones) for obj in frame.objects] == [
        ("person", 7, ("queue",)),
        ("bus", 2, ()),
    ]
    assert [(c.line, c.class_name, c.direction) for c in frame.crossings] == [("gate", "bus", "in")]
    assert frame.timings is not None and frame.timings.total_ms == 12.4
    assert frame.raw == DETECTIONS

    refused = LiveFrame.from_json({"type": "frame_error", "sequence": 4, "message": "not an image"})
    assert (refused.sequence, refused.error, refused.ok, refused.objects) == (
        4,
        "not an image",
        False,
        (),
    )


@pytest.mark.parametrize(
    ("close", "status"),
    [
        (4401, 401),
        (4403, 403),
        (4404, 404),
        (4408, 408),
        (4422, 422),
        (4429, 429),
        (1009, 413),
        (1013, 503),
    ],
)
def test_a_close_is_the_error_of_the_http_refusal_it_stands_for(close: int, status: int) -> None:
    said = {"type": "error", "code": "some_code", "message": "the whole explanation"}
    error = ObjectVisionError.from_close(close, "cut short", said)
    assert (error.status, error.code, error.message) == (
        status,
        "some_code",
        "the whole explanation",
    )
    unexplained = ObjectVisionError.from_close(close, "cut short", None)
    assert (unexplained.status, unexplained.message) == (status, "cut short")


def test_a_close_without_a_refusal_is_a_connection_error() -> None:
    error = ObjectVisionError.from_close(1001, "going away", None)
    assert isinstance(error, ObjectVisionConnectionError)
    assert "1001: going away" in error.message


def test_the_command_prints_a_line_per_frame() -> None:
    frame = LiveFrame.from_json(DETECTIONS)
    assert live_frame_line(frame, "f.jpg") == (
        "#3 640x480 12 ms: bus 1, person 1; crossed gate: bus #2 in"
    )
    refused = LiveFrame.from_json({"type": "frame_error", "sequence": 4, "message": "not an image"})
    assert live_frame_line(refused, "notes.txt") == (
        "#4 could not be detected: not an image (notes.txt)"
    )
