"""What the client makes of a successful answer: the documented bodies become typed models,
and a body in any other shape becomes ObjectVisionError (code `unexpected_response`), never a
KeyError or a JSON decoding traceback.

The answers come from a real HTTP server on a local port, standing where the gateway would:
a proxy's login page, another service at the API URL or a gateway of another version is what
a user meets in practice.
"""

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from objectvision_client import AsyncClient, Client, ObjectVisionError

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
def server() -> Iterator[tuple[str, Answers]]:
    answers = Answers()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status, content_type, body = answers.by_path.get(
                self.path.split("?")[0], (404, "text/plain", b"no such path")
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Request-ID", "req-from-the-server")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reports what matters."""

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}", answers
    finally:
        http.shutdown()
        http.server_close()


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
