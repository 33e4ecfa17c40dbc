"""Live detection over a WebSocket (ADR 0059) end to end: gateway -> detection-service's
DetectStream -> Triton, all real, through the protocol itself and through the Python client
and the `objectvision live` command built on it.

The protocol tests speak it with a bare WebSocket client, as a browser or any other client
would: credentials in a header, one text message of settings answered `ready`, one binary
message per frame answered in order (`detections`, or `frame_error` and the stream goes on),
`{"type": "end"}` answered `ended` and close 1000; a stream that must end says why in an
`error` message, then closes with the code of the HTTP refusal it stands for (4401, 4403,
4404, 4422, 1009). The client tests hold `Client.live` and `AsyncClient.live` to the same
answers, and to raising the errors the REST routes raise for those refusals. Each test signs
up its own users; frames are bus.jpg and zidane.jpg (/work/shared/images), a few each, so
the module stays a few seconds of inference on a small CPU.
"""

import asyncio
import contextlib
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from objectvision_client import (
    AsyncClient,
    Client,
    CountingLine,
    CountingZone,
    DetectionParams,
    LiveFrame,
    ObjectVisionError,
)
from objectvision_devstack.api_users import Account, fresh_network, signed_in
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.image_server import image_server
from objectvision_devstack.stack import Stack
from objectvision_devstack.videos import make_video
from objectvision_devstack.waiting import eventually

from .conftest import PANNED_SIZE

IMAGES = (
    Path(os.environ.get("OBJECTVISION_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    / "images"
)
BUS = IMAGES / "bus.jpg"
ZIDANE = IMAGES / "zidane.jpg"
LIVE = "/api/v1/ws/detect"
IMAGE = "/api/v1/detect/image"
API_KEYS = "/api/v1/users/me/api-keys"
# The shared stack's MAX_UPLOAD_BYTES (the gateway's default): the largest frame.
MAX_FRAME_BYTES = 20 * 1024 * 1024
# A bound on one stream of a few frames, not the expected time: the machine may be busy.
STREAM_WITHIN_SECONDS = 60.0

pytestmark = pytest.mark.skipif(not BUS.exists(), reason=f"sample images not found under {IMAGES}")


async def _account(client: httpx.AsyncClient) -> Account:
    return await signed_in(client, prefix="live", name="Live Viewer")


async def _api_key(client: httpx.AsyncClient, owner: Account, scopes: list[str]) -> str:
    created = await client.post(
        API_KEYS,
        json={"name": f"live-{uuid.uuid4().hex[:6]}", "scopes": scopes},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


async def _detected(client: httpx.AsyncClient, account: Account, data: bytes) -> dict[str, Any]:
    """What POST /detect/image answers for `data`, stored nowhere."""
    response = await client.post(
        IMAGE,
        params={"store": "false"},
        files={"file": ("frame.jpg", data, "image/jpeg")},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _ws_url(stack: Stack) -> str:
    return stack.gateway_url.replace("http://", "ws://") + LIVE


@contextlib.asynccontextmanager
async def _opened(
    stack: Stack, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientConnection]:
    # No per-message deflate, as the Python client and the gateway have it: frames reach
    # the gateway as fast as they are sent.
    async with (
        asyncio.timeout(STREAM_WITHIN_SECONDS),
        connect(
            _ws_url(stack), additional_headers=headers or {}, open_timeout=10, compression=None
        ) as socket,
    ):
        yield socket


async def _until_closed(socket: ClientConnection) -> tuple[list[dict[str, Any]], int, str]:
    """Every message left on the stream, then the server's close code and reason."""
    messages: list[dict[str, Any]] = []
    try:
        while True:
            messages.append(json.loads(await socket.recv()))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "the server closed without a close frame"
        return messages, closed.rcvd.code, closed.rcvd.reason


async def _ready(socket: ClientConnection, settings: dict[str, Any]) -> dict[str, Any]:
    await socket.send(json.dumps(settings))
    ready: dict[str, Any] = json.loads(await socket.recv())
    assert ready["type"] == "ready", ready
    return ready


async def _stream(
    stack: Stack, account: Account, settings: dict[str, Any], frames: list[bytes]
) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """Settings, every frame at once, then `end`: the answers, the `ended` message and the
    close code. All frames go before any answer is read, which the server must bear (it
    reads `max_in_flight` ahead, then lets TCP hold the rest)."""
    async with _opened(stack, account.headers) as socket:
        await _ready(socket, settings)
        for frame in frames:
            await socket.send(frame)
        await socket.send(json.dumps({"type": "end"}))
        messages, code, _ = await _until_closed(socket)
    *answers, ended = messages
    return answers, ended, code


def _same_objects(live: list[dict[str, Any]], detected: list[dict[str, Any]]) -> None:
    """The objects of a live answer are an image detection's of the same bytes, each with
    the video frame's `zones` (none here) and no track: same classes, scores and boxes, in
    the same order (both run the same model on the same pixels; a batch of other frames
    beside it may move a score in its last digits)."""
    assert [(o["class"], o["class_id"]) for o in live] == [
        (o["class"], o["class_id"]) for o in detected
    ], live
    for found, expected in zip(live, detected, strict=True):
        assert found["track_id"] is None and found["zones"] == []
        assert found["confidence"] == pytest.approx(expected["confidence"], abs=2e-3)
        for corner in ("x1", "y1", "x2", "y2"):
            assert found["bbox"][corner] == pytest.approx(expected["bbox"][corner], abs=1.0)


# The protocol


async def test_frames_are_answered_in_order_with_what_an_image_detection_finds(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    account = await _account(gateway_client)
    bus, zidane = BUS.read_bytes(), ZIDANE.read_bytes()
    expected = {
        "bus": await _detected(gateway_client, account, bus),
        "zidane": await _detected(gateway_client, account, zidane),
    }

    async with _opened(stack, account.headers) as socket:
        ready = await _ready(socket, {})
        assert ready == {"type": "ready", "max_frame_bytes": MAX_FRAME_BYTES, "max_in_flight": 4}
        for frame in (bus, zidane, bus):
            await socket.send(frame)
        await socket.send(json.dumps({"type": "end"}))
        *answers, ended = [json.loads(await socket.recv()) for _ in range(4)]
        assert ended == {"type": "ended", "frames": 3}
        rest, code, _ = await _until_closed(socket)
    assert (rest, code) == ([], 1000)

    assert [(a["type"], a["sequence"]) for a in answers] == [
        ("detections", 1),
        ("detections", 2),
        ("detections", 3),
    ]
    for answer, name in zip(answers, ("bus", "zidane", "bus"), strict=True):
        image = expected[name]
        assert answer["image"] == image["image"]
        _same_objects(answer["detections"], image["detections"])
        assert (
            answer["counts"]
            == image["counts"]
            == dict(Counter(obj["class"] for obj in image["detections"]))
        )
        assert answer["crossings"] == []
        assert answer["timings"]["total_ms"] > 0
        assert (answer["model"], answer["model_version"]) == (
            image["model"],
            image["model_version"],
        )
    assert expected["bus"]["counts"] == {"person": 4, "bus": 1}

    # Nothing is stored: live frames are answers only.
    history = await gateway_client.get("/api/v1/detect/history", headers=account.headers)
    assert history.json()["total"] == 0


async def test_a_tracked_stream_keeps_each_objects_track_id_from_its_second_frame(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    account = await _account(gateway_client)
    answers, ended, code = await _stream(
        stack, account, {"track": True, "frame_rate": 10}, [BUS.read_bytes()] * 4
    )
    assert (ended, code) == ({"type": "ended", "frames": 4}, 1000)
    assert [answer["sequence"] for answer in answers] == [1, 2, 3, 4]
    # A track starts unnamed in its first frame (ADR 0038), then keeps one id: every object
    # the tracker follows (a faint one may stay untracked) has the same id in every frame.
    first, *later = answers
    assert len(first["detections"]) == 5
    assert all(obj["track_id"] is None for obj in first["detections"])
    tracks = []
    for answer in later:
        ids = [obj["track_id"] for obj in answer["detections"] if obj["track_id"] is not None]
        assert len(ids) == len(set(ids)), answer
        tracks.append(
            {
                obj["track_id"]: obj["class"]
                for obj in answer["detections"]
                if obj["track_id"] is not None
            }
        )
    assert tracks[0] == tracks[1] == tracks[2]
    assert Counter(tracks[0].values())["bus"] == 1 and len(tracks[0]) >= 4, tracks[0]


async def test_a_frame_that_is_not_an_image_is_answered_with_why_and_the_stream_goes_on(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    account = await _account(gateway_client)
    answers, ended, code = await _stream(
        stack, account, {}, [b"this is not an image", ZIDANE.read_bytes()]
    )
    refused, detected = answers
    assert refused["type"] == "frame_error" and refused["sequence"] == 1, refused
    assert set(refused) == {"type", "sequence", "message"}
    assert refused["message"]
    assert (detected["type"], detected["sequence"]) == ("detections", 2)
    assert detected["counts"].get("person", 0) >= 2
    assert (ended, code) == ({"type": "ended", "frames": 2}, 1000)


async def test_end_at_once_ends_the_stream_with_no_frame_answered(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    account = await _account(gateway_client)
    answers, ended, code = await _stream(stack, account, {"confidence": 0.5}, [])
    assert (answers, ended, code) == ([], {"type": "ended", "frames": 0}, 1000)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        pytest.param(
            {"lines": [{"name": "gate", "start": [0, 100], "end": [640, 100]}]},
            "need track=true",
            id="lines-without-track",
        ),
        pytest.param({"confidence": 2}, "confidence", id="confidence-2"),
        pytest.param({"track": True, "frame_rate": 0}, "frame_rate", id="frame-rate-0"),
        pytest.param({"fps": 2}, "fps", id="unknown-field"),
        pytest.param("[]", "", id="not-an-object"),
    ],
)
async def test_refused_settings_end_the_stream_with_the_reason_and_4422(
    stack: Stack, gateway_client: httpx.AsyncClient, settings: dict[str, Any] | str, says: str
) -> None:
    account = await _account(gateway_client)
    async with _opened(stack, account.headers) as socket:
        await socket.send(settings if isinstance(settings, str) else json.dumps(settings))
        messages, code, reason = await _until_closed(socket)
    (error,) = messages
    assert (error["type"], error["code"]) == ("error", "validation_error"), error
    assert says in json.dumps(error), error
    assert code == 4422
    assert reason and reason in error["message"]


async def test_a_frame_before_the_settings_is_refused_4422(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    account = await _account(gateway_client)
    async with _opened(stack, account.headers) as socket:
        await socket.send(BUS.read_bytes())
        messages, code, _ = await _until_closed(socket)
    (error,) = messages
    assert (error["type"], error["code"], code) == ("error", "validation_error", 4422)
    assert "settings first" in error["message"]


async def test_an_unknown_model_ends_the_stream_4404_before_it_is_ready(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    """The detection service judges the settings before any picture (the stream's opening
    frame carries no image): an unknown model is said instead of `ready`, with the models
    there are, and the stream ends 4404."""
    account = await _account(gateway_client)
    async with _opened(stack, account.headers) as socket:
        await socket.send(json.dumps({"model": "no-such-model"}))
        messages, code, _ = await _until_closed(socket)
    [error] = messages
    assert (error["type"], error["code"], code) == ("error", "unknown_model", 4404), error
    assert "no-such-model" in error["message"]
    assert "yolov8n" in error["message"]


async def test_a_counting_line_off_the_picture_ends_the_stream_4422_at_the_first_frame(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    """The settings say no picture size, so a line right of a 810-pixel-wide picture is
    accepted at first; the first frame shows it would never count, and the stream ends saying
    so instead of answering counts of zero."""
    account = await _account(gateway_client)
    settings = {"track": True, "lines": [{"name": "far", "start": [900, 0], "end": [900, 1080]}]}
    async with _opened(stack, account.headers) as socket:
        await _ready(socket, settings)
        await socket.send(BUS.read_bytes())
        messages, code, _ = await _until_closed(socket)
    [error] = messages
    assert (error["type"], error["code"], code) == ("error", "invalid_argument", 4422), error
    assert error["message"] == "counting line 'far' leaves the 810x1080 picture"


async def test_a_zone_a_million_pixels_out_ends_the_stream_4422_at_the_first_frame(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    """Nothing is built for a stream's zone until a frame shows it lies inside the picture:
    a corner a million pixels out (a mask up to it would be a terabyte) is refused at the first
    frame, and the service answers the next stream as before."""
    account = await _account(gateway_client)
    far = {"name": "far", "polygon": [[0, 0], [1_000_000, 0], [1_000_000, 1_000_000]]}
    async with _opened(stack, account.headers) as socket:
        await _ready(socket, {"track": True, "zones": [far]})
        await socket.send(BUS.read_bytes())
        messages, code, _ = await _until_closed(socket)
    [error] = messages
    assert (error["type"], error["code"], code) == ("error", "invalid_argument", 4422), error
    assert error["message"] == "counting zone 'far' leaves the 810x1080 picture"
    answers, ended, code = await _stream(stack, account, {"track": True}, [BUS.read_bytes()])
    assert [answer["type"] for answer in answers] == ["detections"]
    assert (ended, code) == ({"type": "ended", "frames": 1}, 1000)


async def test_a_zone_whose_edges_cross_ends_the_stream_4422_before_it_is_ready(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    """A bow tie (corners clicked out of order) has no inside its corners agree on: the
    detection service refuses it with the settings, before `ready`, saying how to fix it."""
    account = await _account(gateway_client)
    bow_tie = {"name": "bay", "polygon": [[0, 0], [200, 200], [200, 0], [0, 100]]}
    async with _opened(stack, account.headers) as socket:
        await socket.send(json.dumps({"track": True, "zones": [bow_tie]}))
        messages, code, _ = await _until_closed(socket)
    [error] = messages
    assert (error["type"], error["code"], code) == ("error", "invalid_argument", 4422), error
    assert error["message"] == (
        "counting zone 'bay' has edges that cross: give its corners in order around it"
    )


async def test_a_frame_over_the_upload_limit_ends_the_stream_1009_after_the_answers_owed(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    """The frame before it, sent just ahead and not yet answered, still gets its answer:
    every frame read gets exactly one."""
    account = await _account(gateway_client)
    async with _opened(stack, account.headers) as socket:
        await _ready(socket, {})
        await socket.send(BUS.read_bytes())
        await socket.send(bytes(MAX_FRAME_BYTES + 1))
        messages, code, _ = await _until_closed(socket)
    answered, error = messages
    assert (answered["type"], answered["sequence"]) == ("detections", 1)
    assert (error["type"], error["code"], code) == ("error", "frame_too_large", 1009), error
    assert f"frame 2 has {MAX_FRAME_BYTES + 1} bytes" in error["message"]


async def _refusal(stack: Stack, headers: dict[str, str]) -> tuple[list[dict[str, Any]], int]:
    """What a stream opened with `headers` and sent `{}` as its settings gets before its
    close, and the close code."""
    async with _opened(stack, headers) as socket:
        with contextlib.suppress(ConnectionClosed):
            await socket.send("{}")
        messages, code, _ = await _until_closed(socket)
    return messages, code


async def test_no_credentials_close_4401_and_a_key_without_the_detect_scope_4403(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    """Every stream-ending close follows an `error` message (ADR 0059), refused credentials
    too."""
    owner = await _account(gateway_client)
    reader = await _api_key(gateway_client, owner, ["results:read"])
    detector = await _api_key(gateway_client, owner, ["detect"])

    refusals = [
        await _refusal(stack, headers)
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": reader})
    ]
    async with _opened(stack, {"X-API-Key": detector}) as socket:
        await _ready(socket, {})

    assert [code for _, code in refusals] == [4401, 4401, 4403]
    assert [[(m["type"], m["code"]) for m in messages] for messages, _ in refusals] == [
        [("error", "unauthenticated")],
        [("error", "invalid_token")],
        [("error", "insufficient_scope")],
    ]


# The client


def _client(stack: Stack, **options: Any) -> Client:
    return Client(stack.gateway_url, headers=fresh_network(), **options)


def _objects(frame: LiveFrame) -> list[tuple[str, float]]:
    return [(obj.class_name, round(obj.confidence, 2)) for obj in frame.objects]


async def test_the_client_streams_frames_and_yields_each_answer_in_order(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    account = await _account(gateway_client)
    key = await _api_key(gateway_client, account, ["detect"])
    bus, zidane = BUS.read_bytes(), ZIDANE.read_bytes()

    def stream() -> tuple[list[LiveFrame], list[Any]]:
        with _client(stack) as client:
            client.login(account.email, account.password)
            expected = [
                client.detect_image((n, d), store=False) for n, d in (("b", bus), ("z", zidane))
            ]
            frames = list(client.live([bus, zidane, b"not an image", bus]))
        return frames, expected

    frames, (on_bus, on_zidane) = await asyncio.to_thread(stream)
    assert [frame.sequence for frame in frames] == [1, 2, 3, 4]
    first, second, refused, again = frames
    assert (first.width, first.height) == (on_bus.width, on_bus.height) == (810, 1080)
    assert [obj.class_name for obj in first.objects] == [o.class_name for o in on_bus.objects]
    assert [obj.class_name for obj in second.objects] == [o.class_name for o in on_zidane.objects]
    assert first.class_counts() == on_bus.class_counts() == {"person": 4, "bus": 1}
    assert first.ok and first.error is None and first.timings and first.timings.total_ms > 0
    assert first.model == on_bus.model and first.raw["type"] == "detections"
    assert not refused.ok and refused.error and refused.objects == ()
    assert _objects(again) == _objects(first)

    # An API key with the detect scope streams too, with detection parameters.
    def with_key() -> list[LiveFrame]:
        with _client(stack, api_key=key) as client:
            return list(client.live([bus], DetectionParams(classes=["bus"])))

    (only_bus,) = await asyncio.to_thread(with_key)
    assert only_bus.class_counts() == {"bus": 1}


async def test_the_client_counts_crossings_and_names_zones_of_a_tracked_stream(
    stack: Stack,
    gateway_client: httpx.AsyncClient,
    panned_frames: list[np.ndarray],
    bus_passes_x: int,
) -> None:
    """bus.jpg panned right (tests/conftest.py): the bus crosses a line where its centre
    passes halfway, once, "in" (drawn downwards), and stands in the zone from there on."""
    account = await _account(gateway_client)
    width, height = PANNED_SIZE
    gate = CountingLine(name="gate", start=(bus_passes_x, 0), end=(bus_passes_x, height))
    right = CountingZone(
        name="right",
        polygon=((bus_passes_x, 0), (width, 0), (width, height), (bus_passes_x, height)),
    )
    encoded = [cv2.imencode(".jpg", frame)[1].tobytes() for frame in panned_frames]

    async with AsyncClient(stack.gateway_url, headers=fresh_network()) as client:
        await client.login(account.email, account.password)
        frames = [
            frame
            async for frame in client.live(
                _slowly(encoded), track=True, frame_rate=10, lines=[gate], zones=[right]
            )
        ]
    assert [frame.sequence for frame in frames] == list(range(1, len(encoded) + 1))
    crossings = [(frame.sequence, c) for frame in frames for c in frame.crossings]
    bus_crossings = [(n, c) for n, c in crossings if c.class_name == "bus"]
    assert [(c.line, c.direction) for _, c in bus_crossings] == [("gate", "in")], crossings
    ((crossed_at, crossing),) = bus_crossings
    buses = [
        [obj for obj in frame.objects if obj.class_name == "bus"]
        for frame in frames[crossed_at - 1 :]
    ]
    assert all(len(found) == 1 for found in buses)
    assert {found[0].track_id for found in buses} == {crossing.track_id}
    assert buses[-1][0].zones == ("right",)


async def _slowly(frames: list[bytes]) -> AsyncIterator[bytes]:
    """The frames as an async iterable (a camera's), each handed over when asked for."""
    for frame in frames:
        await asyncio.sleep(0)
        yield frame


@pytest.mark.parametrize(
    ("options", "status", "code"),
    [
        pytest.param(
            {"track": False, "lines": [CountingLine(name="g", start=(0, 1), end=(9, 1))]},
            422,
            "validation_error",
            id="lines-without-track",
        ),
        pytest.param(
            {"params": DetectionParams(confidence=2)}, 422, "validation_error", id="confidence-2"
        ),
        pytest.param(
            {"params": DetectionParams(model="no-such-model")},
            404,
            "unknown_model",
            id="unknown-model",
        ),
    ],
)
async def test_the_client_raises_the_rest_routes_errors_for_a_refused_stream(
    stack: Stack,
    gateway_client: httpx.AsyncClient,
    options: dict[str, Any],
    status: int,
    code: str,
) -> None:
    account = await _account(gateway_client)

    def stream() -> ObjectVisionError:
        with _client(stack) as client:
            client.login(account.email, account.password)
            with pytest.raises(ObjectVisionError) as refused:
                list(client.live([BUS.read_bytes()], **options))
        return refused.value

    error = await asyncio.to_thread(stream)
    assert (error.status, error.code) == (status, code), error
    assert error.message


async def test_the_client_raises_401_403_and_413_as_the_rest_routes_do(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    owner = await _account(gateway_client)
    reader = await _api_key(gateway_client, owner, ["results:read"])
    detector = await _api_key(gateway_client, owner, ["detect"])

    def refused(api_key: str | None, frames: list[bytes]) -> ObjectVisionError:
        with _client(stack, api_key=api_key) as client, pytest.raises(ObjectVisionError) as error:
            list(client.live(frames))
        return error.value

    unauthenticated = await asyncio.to_thread(refused, None, [BUS.read_bytes()])
    assert unauthenticated.status == 401
    forbidden = await asyncio.to_thread(refused, reader, [BUS.read_bytes()])
    assert forbidden.status == 403
    too_large = await asyncio.to_thread(refused, detector, [bytes(MAX_FRAME_BYTES + 1)])
    assert (too_large.status, too_large.code) == (413, "frame_too_large")


async def test_the_client_ends_the_stream_when_the_caller_stops_or_the_frames_fail(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    account = await _account(gateway_client)
    key = await _api_key(gateway_client, account, ["detect"])
    bus = BUS.read_bytes()

    def failing() -> Iterator[bytes]:
        yield bus
        raise OSError("the camera went away")

    def stream() -> tuple[LiveFrame, list[LiveFrame]]:
        with _client(stack, api_key=key) as client:
            # Stopping early closes the stream: nothing more is sent or owed.
            answers = client.live(iter([bus] * 50))
            first = next(answers)
            answers.close()
            seen: list[LiveFrame] = []
            with pytest.raises(OSError, match="the camera went away"):
                seen.extend(client.live(failing()))
        return first, seen

    first, seen = await asyncio.to_thread(stream)
    assert first.sequence == 1
    assert [frame.sequence for frame in seen] in ([], [1])

    async def failing_camera() -> AsyncIterator[bytes]:
        yield bus
        raise OSError("the camera went away")

    async with AsyncClient(stack.gateway_url, api_key=key) as client:
        async with contextlib.aclosing(client.live([bus] * 50)) as answers:
            async for frame in answers:
                assert frame.sequence == 1
                break
        with pytest.raises(OSError, match="the camera went away"):
            async for frame in client.live(failing_camera()):
                assert frame.sequence == 1


# The command


async def test_the_command_prints_a_line_or_json_per_frame(
    stack: Stack, gateway_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    account = await _account(gateway_client)
    key = await _api_key(gateway_client, account, ["detect"])
    frames = tmp_path / "frames"
    frames.mkdir()
    for number, source in enumerate((BUS, ZIDANE, BUS), start=1):
        (frames / f"frame-{number:04d}.jpg").write_bytes(source.read_bytes())
    (frames / "notes.txt").write_text("not a frame")
    objectvision = CommandLine(stack.gateway_url, tmp_path / "config")

    def run(*args: str, expect: int = 0) -> Any:
        return objectvision.run(*args, expect=expect, extra_env={"OBJECTVISION_API_KEY": key})

    printed = await asyncio.to_thread(run, "live", str(frames), "--track")
    lines = printed.stdout.splitlines()
    assert len(lines) == 3, printed.stdout
    pattern = r"#(\d) (\d+)x(\d+) \d+ ms: (.*)"
    parsed = [re.fullmatch(pattern, line) for line in lines]
    assert all(parsed), lines
    assert [match.group(1, 2, 3) for match in parsed if match] == [
        ("1", "810", "1080"),
        ("2", "1280", "720"),
        ("3", "810", "1080"),
    ]
    assert parsed[0] and parsed[0].group(4) == "person 4, bus 1"
    assert "Skipped" in printed.stderr and "notes.txt" in printed.stderr
    assert "Detected 3 frames." in printed.stderr

    listed = await asyncio.to_thread(
        run, "live", str(BUS), str(frames / "notes.txt"), "--json", "--confidence", "0.5", expect=1
    )
    answers = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(a["type"], a["sequence"], a["file"]) for a in answers] == [
        ("detections", 1, str(BUS)),
        ("frame_error", 2, str(frames / "notes.txt")),
    ]
    assert "1 of 2 frames could not be detected" in listed.stderr

    usage = await asyncio.to_thread(run, "live", str(BUS), "--line", "gate:0,10,100,10", expect=2)
    assert "--line needs --track" in usage.stderr


async def test_the_command_streams_a_videos_frames_with_their_index(
    stack: Stack, gateway_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """`live --video`: the recording's frames, every `--every`-th, each a JPEG of the decoded
    frame, answered in order and named by its index in the video; tracked objects keep their
    ids across them. A file that is no video is said so, and images and a video together
    are a usage error."""
    account = await _account(gateway_client)
    key = await _api_key(gateway_client, account, ["detect"])
    video = make_video(tmp_path / "bus-then-zidane.mp4", [(BUS, 4), (ZIDANE, 4)], fps=8)
    objectvision = CommandLine(stack.gateway_url, tmp_path / "config")

    def run(*args: str, expect: int = 0) -> Any:
        return objectvision.run(*args, expect=expect, extra_env={"OBJECTVISION_API_KEY": key})

    printed = await asyncio.to_thread(
        run, "live", "--video", str(video), "--every", "2", "--track", "--json"
    )
    answers = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [(a["type"], a["sequence"], a["file"]) for a in answers] == [
        ("detections", n, f"{video}#{index}") for n, index in enumerate((0, 2, 4, 6), start=1)
    ]
    assert all(a["image"] == {"width": 640, "height": 480} for a in answers)
    assert [a["counts"].get("bus", 0) for a in answers] == [1, 1, 0, 0]
    assert all(a["counts"].get("person", 0) >= 2 for a in answers)
    # The bus of the second frame is the first frame's, tracked.
    [bus] = [o for o in answers[1]["detections"] if o["class"] == "bus"]
    assert bus["track_id"] is not None
    assert f"Detected 4 frames of {video}." in printed.stderr

    not_video = tmp_path / "notes.txt"
    not_video.write_text("not a video")
    refused = await asyncio.to_thread(run, "live", "--video", str(not_video), expect=1)
    assert "cannot open it as a video" in refused.stderr
    both = await asyncio.to_thread(run, "live", str(BUS), "--video", str(video), expect=2)
    assert "not both" in both.stderr


async def test_the_command_streams_a_network_source_as_it_arrives(
    stack: Stack, gateway_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """`live --video URL`: FFmpeg opens the source itself; an MPEG-TS stream over HTTP (what
    encoders and HLS segments serve) is read in one pass, as it comes, its frames named by the
    URL and their index."""
    account = await _account(gateway_client)
    key = await _api_key(gateway_client, account, ["detect"])
    video = make_video(
        tmp_path / "bus-then-zidane.ts", [(BUS, 4), (ZIDANE, 4)], fps=8, container="mpegts"
    )
    objectvision = CommandLine(stack.gateway_url, tmp_path / "config")

    with image_server({"camera.ts": video.read_bytes()}) as camera:
        url = camera.file_url("camera.ts")
        printed = await asyncio.to_thread(
            objectvision.run,
            "live",
            "--video",
            url,
            "--every",
            "2",
            "--json",
            extra_env={"OBJECTVISION_API_KEY": key},
        )
        fetched = [request.path for request in camera.received()]

    answers = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [(a["type"], a["sequence"], a["file"]) for a in answers] == [
        ("detections", n, f"{url}#{index}") for n, index in enumerate((0, 2, 4, 6), start=1)
    ]
    assert [a["counts"].get("bus", 0) for a in answers] == [1, 1, 0, 0]
    assert fetched == ["/files/camera.ts"]


def _streams_open(stack: Stack) -> float:
    """The gateway's gauge of live detection streams it holds."""
    text = httpx.get(f"{stack.gateway_metrics_url}/metrics", timeout=10).text
    [value] = [
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("gateway_live_detect_streams_open ")
    ]
    return value


async def test_a_client_that_leaves_with_frames_owed_frees_its_place(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    """A camera that drops off (no `end`, answers still owed) ends its stream on the gateway:
    the stream stops counting as open, and the account streams again at once."""
    account = await _account(gateway_client)
    before = _streams_open(stack)
    async with _opened(stack, account.headers) as socket:
        await _ready(socket, {})
        assert _streams_open(stack) == before + 1
        for _ in range(3):
            await socket.send(BUS.read_bytes())
    await eventually(
        lambda: _streams_open(stack) == before, within=30, what="the left stream let go"
    )
    answers, ended, code = await _stream(stack, account, {}, [BUS.read_bytes()])
    assert ([a["sequence"] for a in answers], ended["frames"], code) == ([1], 1, 1000)
    # Nothing of the stream was left running behind it: no task destroyed while pending
    # (the call's request reader), no exception out of the route.
    log = stack.processes["gateway"].log_tail(400)
    assert "Task was destroyed but it is pending" not in log
    assert "Exception in ASGI application" not in log
