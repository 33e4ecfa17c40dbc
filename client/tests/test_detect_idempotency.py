"""A stored detection goes with an idempotency key (ADR 0047), so the client's own retry of a
refused request is answered with what the first one stored instead of storing it twice.

The answers come from a real HTTP server on a local port that stands where the gateway would
and keeps every request's Idempotency-Key; tests/test_detect_api.py replays through the real
services.
"""

import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

import pytest

from objectvision_client import AsyncClient, Client
from objectvision_client.retry import RetryPolicy

IMAGE = "/api/v1/detect/image"
DETECTION = {
    "detection_id": "d-1",
    "filename": "bus.jpg",
    "image": {"width": 810, "height": 1080},
    "detections": [],
    "timings": {"total_ms": 12.5},
    "model": "yolov8n",
    "model_version": "1",
    "cached": False,
}
# The smallest JPEG header the client reads a type from; the stand-in never decodes it.
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
QUICK_RETRIES = RetryPolicy(max_attempts=3, backoff_base=0.01)


class StandIn:
    """Answers each POST with the next status of `statuses` (then 200), keeping every key."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.keys: list[str | None] = []
        self.url = ""

    def respond(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length", "0"))
        request.rfile.read(length)
        self.keys.append(request.headers.get("Idempotency-Key"))
        status = self.statuses.pop(0) if self.statuses else 200
        body = DETECTION if status == 200 else {"error": {"code": "unavailable", "message": "x"}}
        payload = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(payload)))
        if status == 503:
            request.send_header("Retry-After", "0")
        request.end_headers()
        request.wfile.write(payload)


@pytest.fixture
def stand_in(
    local_server: Callable[[Callable[[BaseHTTPRequestHandler], None]], str],
) -> Callable[..., StandIn]:
    def start(*statuses: int) -> StandIn:
        server = StandIn(*statuses)
        server.url = local_server(server.respond)
        return server

    return start


def test_each_stored_detection_has_its_own_key_and_a_retry_repeats_it(stand_in) -> None:
    gateway = stand_in(503)
    with Client(gateway.url, api_key="ov_test", retry=QUICK_RETRIES) as client:
        client.detect_image(("bus.jpg", JPEG))
        client.detect_url("https://example.com/bus.jpg")

    first, retried, second = gateway.keys
    assert first and retried == first  # the refused request and its retry: one key
    assert second and second != first  # another detection: another key


async def test_the_async_client_sends_the_callers_key_and_none_without_store(stand_in) -> None:
    gateway = stand_in()
    async with AsyncClient(gateway.url, api_key="ov_test") as client:
        await client.detect_image(("bus.jpg", JPEG), idempotency_key="frame-18821")
        await client.detect_image(("bus.jpg", JPEG), store=False)

    assert gateway.keys == ["frame-18821", None]


def test_a_key_without_store_is_refused_before_anything_is_sent(stand_in) -> None:
    gateway = stand_in()
    with Client(gateway.url, api_key="ov_test") as client, pytest.raises(ValueError, match="store"):
        client.detect_image(("bus.jpg", JPEG), store=False, idempotency_key="k")
    assert gateway.keys == []
