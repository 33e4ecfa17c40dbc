"""The detection routes in-process, with the detection service down (gateway/tests/conftest.py).

Everything the gateway decides alone is checked for real: authentication, content type,
parameter ranges, file counts and sizes, id routing, the OpenAPI document. A request that
passes all of that reaches the (closed) detection service and is a 503, which is how these
tests tell "refused by the gateway" from "sent on".

The caller is authenticated with an access token signed here: the app's key cache is given
our own key source (the auth service is down too), exactly as gateway/tests/test_jwks.py
feeds it; the revocation check still runs against the real Redis.
"""

import base64
import io
import json
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.datastructures import UploadFile

from gateway.app import base64_length, body_limits, create_app
from gateway.auth.jwks import JwksCache
from gateway.config import MAX_IMAGE_BYTES_PER_CALL, GatewaySettings
from gateway.detect_dependencies import VideoFile
from gateway.routers.detect import MULTIPART_OVERHEAD_BYTES, PART_OVERHEAD_BYTES
from gateway.routers.video import _upload_messages
from gateway.schemas.video import CountingLinesIn, CountingZonesIn
from objectvision.v1 import auth_pb2, detection_pb2
from objectvision_common.revocation import revoked_session_key, revoked_token_key
from objectvision_devstack.image_server import ImageServer, image_server

IMAGE = "/api/v1/detect/image"
BATCH = "/api/v1/detect/batch"
HISTORY = "/api/v1/detect/history"
JOBS = "/api/v1/detect/jobs"
# An id in parametrised paths: fixed, so that every collection names the same tests (pytest-xdist
# checks its workers collect alike).
SOME_ID = uuid.UUID("6f1c2e9a-4b7d-4c3e-9a51-2d8f0b7e4a10")
VIDEO = "/api/v1/detect/video"
ISSUER, AUDIENCE, KID = "objectvision-auth", "objectvision", "detect-tests"
# Not an image the gateway could judge: only the detection service reads the bytes.
BYTES = b"\xff\xd8\xff" + b"\x00" * 61


def _assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def _assert_invalid(response: httpx.Response, *loc: str) -> dict[str, Any]:
    error = _assert_error(response, 422, "validation_error")
    assert any(detail["loc"][: len(loc)] == list(loc) for detail in error["details"]), error
    return error


def _assert_sent_on(response: httpx.Response) -> None:
    """The gateway accepted the request and called the detection service, which is down."""
    _assert_error(response, 503, "unavailable")
    assert response.headers["retry-after"] == "1"


@pytest.fixture(scope="module")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _key_source(key: Ed25519PrivateKey) -> Callable[[], Any]:
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    jwk = auth_pb2.JsonWebKey(
        kty="OKP",
        crv="Ed25519",
        x=base64.urlsafe_b64encode(public).rstrip(b"=").decode(),
        kid=KID,
        alg="EdDSA",
        use="sig",
    )

    async def fetch() -> auth_pb2.Jwks:
        return auth_pb2.Jwks(keys=[jwk], issuer=ISSUER, audience=AUDIENCE)

    return fetch


def _token(key: Ed25519PrivateKey, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "admin": False,
        "sid": str(uuid.uuid4()),
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": KID})


@pytest.fixture
def open_detect_client(
    app_client: Callable[..., Any], signing_key: Ed25519PrivateKey
) -> Callable[..., Any]:
    """A client for an app built from setting overrides, signed in as a fresh user."""

    async def open_client(**overrides: Any) -> httpx.AsyncClient:
        app: FastAPI
        app, client = await app_client(**overrides)
        app.state.jwks = JwksCache(_key_source(signing_key), min_refresh_seconds=10)
        client.headers["Authorization"] = f"Bearer {_token(signing_key)}"
        return client

    return open_client


@pytest.fixture
async def authed(open_detect_client: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    yield await open_detect_client()


def _one(name: str = "file", data: bytes = BYTES, filename: str = "a.jpg") -> list[Any]:
    return [(name, (filename, data, "image/jpeg"))]


# Authentication comes first


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", IMAGE),
        ("POST", BATCH),
        ("GET", HISTORY),
        ("GET", JOBS),
        ("GET", f"/api/v1/detect/jobs/{SOME_ID}"),
        ("POST", f"/api/v1/detect/jobs/{SOME_ID}/cancel"),
        ("DELETE", f"/api/v1/detect/jobs/{SOME_ID}"),
        ("GET", f"/api/v1/detect/{SOME_ID}"),
        ("DELETE", f"/api/v1/detect/{SOME_ID}"),
        ("GET", f"/api/v1/detect/{SOME_ID}/image"),
    ],
)
async def test_every_route_needs_credentials(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, files=_one() if method == "POST" else None)
    _assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_an_anonymous_upload_in_the_wrong_shape_is_still_a_401(
    client: httpx.AsyncClient,
) -> None:
    _assert_error(await client.post(IMAGE, json={"file": "x"}), 401, "unauthenticated")


async def test_a_valid_upload_is_sent_to_the_detection_service(
    authed: httpx.AsyncClient,
) -> None:
    _assert_sent_on(await authed.post(IMAGE, files=_one()))
    _assert_sent_on(await authed.post(IMAGE, files=_one("files")))
    _assert_sent_on(
        await authed.post(
            IMAGE,
            params={"confidence": "0.5", "classes": "person, bus", "store": "false"},
            files=_one(),
            data={"iou": "0.45", "max_detections": "10"},
        )
    )
    _assert_sent_on(await authed.post(BATCH, files=_one("files") * 3))


@pytest.mark.parametrize("revoked", ["token", "session"])
async def test_a_revoked_token_or_session_is_a_401(
    open_detect_client: Callable[..., Any],
    signing_key: Ed25519PrivateKey,
    redis_url: str,
    revoked: str,
) -> None:
    """The entries auth-service writes at logout and on refresh-token reuse: either one
    refuses the token, the session's one whatever the token's own id."""
    client = await open_detect_client()
    jti, sid = uuid.uuid4().hex, str(uuid.uuid4())
    client.headers["Authorization"] = f"Bearer {_token(signing_key, jti=jti, sid=sid)}"
    _assert_sent_on(await client.post(IMAGE, files=_one()))
    key = revoked_token_key(jti) if revoked == "token" else revoked_session_key(sid)
    async with Redis.from_url(redis_url) as redis:
        await redis.set(key, "1", ex=60)
    response = await client.post(IMAGE, files=_one())
    assert "revoked" in _assert_error(response, 401, "invalid_token")["message"]


async def test_an_api_key_caller_needs_the_auth_service(client: httpx.AsyncClient) -> None:
    response = await client.post(IMAGE, files=_one(), headers={"X-API-Key": "ov_0000_secret"})
    _assert_error(response, 503, "unavailable")


# Content type


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": {"file": "hello"}},
        {"content": BYTES, "headers": {"Content-Type": "image/jpeg"}},
        {"content": b"{}", "headers": {"Content-Type": "text/json"}},
        {"content": b""},
    ],
)
@pytest.mark.parametrize("path", [IMAGE, BATCH])
async def test_anything_but_multipart_or_json_is_a_415(
    authed: httpx.AsyncClient, path: str, kwargs: dict[str, Any]
) -> None:
    error = _assert_error(await authed.post(path, **kwargs), 415, "unsupported_media_type")
    assert "multipart/form-data" in error["message"]
    assert "application/json" in error["message"]


async def test_a_multipart_body_without_a_boundary_is_a_400(authed: httpx.AsyncClient) -> None:
    response = await authed.post(
        IMAGE, content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}
    )
    _assert_error(response, 400, "bad_request")


# Images by URL or as base64, in a JSON body (ADR 0027)


@pytest.fixture(scope="module")
def image_host() -> Iterator[ImageServer]:
    with image_server({"a.jpg": BYTES}) as server:
        yield server


def _b64(data: bytes = BYTES) -> str:
    return base64.b64encode(data).decode()


async def test_an_anonymous_json_body_is_a_401_and_its_url_is_never_fetched(
    client: httpx.AsyncClient, image_host: ImageServer
) -> None:
    before = len(image_host.received())
    for path, body in [
        (IMAGE, {"url": image_host.file_url("a.jpg")}),
        (BATCH, {"images": [{"url": image_host.file_url("a.jpg")}]}),
    ]:
        _assert_error(await client.post(path, json=body), 401, "unauthenticated")
    assert len(image_host.received()) == before


async def test_base64_images_are_sent_to_the_detection_service(
    authed: httpx.AsyncClient,
) -> None:
    _assert_sent_on(await authed.post(IMAGE, json={"image_base64": _b64()}))
    wrapped = "\n".join(textwrap.wrap(_b64(), 76))
    _assert_sent_on(await authed.post(IMAGE, json={"image_base64": wrapped}))
    data_url = f"data:image/jpeg;base64,{_b64()}"
    _assert_sent_on(
        await authed.post(
            IMAGE,
            params={"classes": "bus"},
            json={"image_base64": data_url, "filename": "a.jpg", "confidence": 0.5, "store": False},
        )
    )
    images = [{"image_base64": _b64(), "filename": f"{n}.jpg"} for n in range(3)]
    _assert_sent_on(await authed.post(BATCH, json={"images": images, "iou": 0.5}))


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        (IMAGE, {}, ["body"]),
        (IMAGE, {"filename": "a.jpg"}, ["body"]),
        (IMAGE, {"url": "https://example.com/a.jpg", "image_base64": "aGVsbG8="}, ["body"]),
        (BATCH, {"images": [{"image_base64": "aGVsbG8="}, {}]}, ["body", "images", 1]),
    ],
)
async def test_both_or_neither_of_url_and_image_base64_is_a_422(
    authed: httpx.AsyncClient, path: str, body: dict[str, Any], loc: list[Any]
) -> None:
    error = _assert_invalid(await authed.post(path, json=body), *loc)
    assert "exactly one of url or image_base64" in error["message"]


@pytest.mark.parametrize(
    "text",
    [
        "not base64!",
        "aGVsbG8",
        "data:text/plain;base64,aGVsbG8=",
        "\uff48\uff45\uff4c\uff4c\uff4f=",
    ],
)
async def test_bad_base64_is_a_422(authed: httpx.AsyncClient, text: str) -> None:
    error = _assert_invalid(await authed.post(IMAGE, json={"image_base64": text}), "body")
    assert "image_base64" in error["message"] and "base64" in error["details"][0]["msg"]
    response = await authed.post(BATCH, json={"images": [{"image_base64": text}]})
    _assert_invalid(response, "body", "images", 0, "image_base64")


@pytest.mark.parametrize(
    ("params", "body", "loc"),
    [
        ({"confidence": "0.5"}, {"confidence": 0.5}, ("body", "confidence")),
        ({"store": "false"}, {"store": False}, ("body", "store")),
        ({}, {"confidence": "0.5"}, ("body", "confidence")),
        ({}, {"max_detections": 10.0}, ("body", "max_detections")),
        ({}, {"store": "false"}, ("body", "store")),
        ({}, {"files": "x"}, ("body", "files")),
        ({"iou": "2"}, {}, ("query", "iou")),
    ],
)
async def test_json_parameters_are_checked_like_form_fields_and_strictly_typed(
    authed: httpx.AsyncClient, params: dict[str, str], body: dict[str, Any], loc: tuple[str, str]
) -> None:
    response = await authed.post(IMAGE, params=params, json={"image_base64": _b64(), **body})
    _assert_invalid(response, *loc)


async def test_a_body_that_is_not_json_is_a_422(authed: httpx.AsyncClient) -> None:
    response = await authed.post(
        IMAGE, content=b'{"url": ', headers={"Content-Type": "application/json"}
    )
    _assert_error(response, 422, "malformed_json")


async def test_a_json_batch_takes_1_to_max_batch_files_images(
    open_detect_client: Callable[..., Any],
) -> None:
    client = await open_detect_client(MAX_BATCH_FILES=2)
    for count in (0, 3):
        images = [{"image_base64": _b64()}] * count
        error = _assert_invalid(await client.post(BATCH, json={"images": images}), "body", "images")
        assert f"1 to 2 images; got {count}" in error["message"]


async def test_base64_over_max_upload_bytes_is_a_413_and_fails_only_its_item_in_a_batch(
    open_detect_client: Callable[..., Any],
) -> None:
    client = await open_detect_client(MAX_UPLOAD_BYTES=1000)
    _assert_sent_on(await client.post(IMAGE, json={"image_base64": _b64(b"\xff" * 1000)}))
    big = {"image_base64": _b64(b"\xff" * 1001), "filename": "big.jpg"}
    error = _assert_error(await client.post(IMAGE, json=big), 413, "payload_too_large")
    assert "'big.jpg'" in error["message"] and "1000 bytes" in error["message"]
    _assert_sent_on(await client.post(BATCH, json={"images": [big, {"image_base64": _b64()}]}))
    _assert_error(await client.post(BATCH, json={"images": [big]}), 413, "payload_too_large")


async def test_urls_are_forbidden_by_default_and_fail_only_their_item_in_a_batch(
    authed: httpx.AsyncClient, image_host: ImageServer
) -> None:
    """IMAGE_URL_ALLOW_PRIVATE is false by default, and the image host is on 127.0.0.1."""
    before = len(image_host.received())
    url = image_host.file_url("a.jpg")
    error = _assert_error(await authed.post(IMAGE, json={"url": url}), 422, "image_url_forbidden")
    assert "private, loopback or otherwise internal" in error["message"]
    mixed = {"images": [{"url": url}, {"image_base64": _b64()}]}
    _assert_sent_on(await authed.post(BATCH, json=mixed))
    only_urls = {"images": [{"url": url}, {"url": "file:///etc/passwd"}]}
    _assert_error(await authed.post(BATCH, json=only_urls), 422, "image_url_forbidden")
    assert len(image_host.received()) == before


async def test_a_url_allowed_by_the_settings_is_fetched_and_sent_on(
    open_detect_client: Callable[..., Any], image_host: ImageServer
) -> None:
    client = await open_detect_client(IMAGE_URL_ALLOW_PRIVATE=True)
    _assert_sent_on(await client.post(IMAGE, json={"url": image_host.file_url("a.jpg")}))
    assert image_host.received()[-1].path == "/files/a.jpg"
    missing = await client.post(IMAGE, json={"url": f"{image_host.url}/status/404"})
    error = _assert_error(missing, 422, "image_url_unreachable")
    assert "404 Not Found" in error["message"]


# Parameters


@pytest.mark.parametrize(
    ("params", "data", "loc"),
    [
        ({"confidence": "1.5"}, {}, ("query", "confidence")),
        ({"confidence": "-0.1"}, {}, ("query", "confidence")),
        ({"confidence": "nan"}, {}, ("query", "confidence")),
        ({"confidence": "high"}, {}, ("query", "confidence")),
        ({}, {"confidence": "2"}, ("body", "confidence")),
        ({"iou": "1.01"}, {}, ("query", "iou")),
        ({}, {"iou": "-1"}, ("body", "iou")),
        ({"max_detections": "0"}, {}, ("query", "max_detections")),
        ({}, {"max_detections": "1001"}, ("body", "max_detections")),
        ({"max_detections": "2.5"}, {}, ("query", "max_detections")),
        ({"classes": "x" * 2001}, {}, ("query", "classes")),
        ({"store": "perhaps"}, {}, ("query", "store")),
        ({"confidence": "0.5"}, {"confidence": "0.5"}, ("body", "confidence")),
        ({"store": "true"}, {"store": "false"}, ("body", "store")),
        ({}, {"confidance": "0.5"}, ("body", "confidance")),
    ],
)
async def test_bad_parameters_are_a_422_naming_them(
    authed: httpx.AsyncClient, params: dict[str, str], data: dict[str, str], loc: tuple[str, str]
) -> None:
    response = await authed.post(IMAGE, params=params, data=data, files=_one())
    error = _assert_invalid(response, *loc)
    assert loc[1] in error["message"]


@pytest.mark.parametrize(
    ("params", "data"),
    [({"track": "true"}, {}), ({}, {"track": "true", "every": "1"}), ({}, {"track": "false"})],
)
async def test_a_video_asks_for_tracking_as_a_query_parameter_or_a_form_field(
    authed: httpx.AsyncClient, params: dict[str, str], data: dict[str, str]
) -> None:
    _assert_sent_on(await authed.post(VIDEO, params=params, data=data, files=_one()))


def _video_file(*, track: bool, lines: str | None = None, zones: str | None = None) -> VideoFile:
    """A spooled video as the upload dependency hands it on, with the counting lines and
    zones of the `lines` and `zones` form fields (JSON) where given."""
    return VideoFile(
        file=UploadFile(io.BytesIO(b"video bytes"), filename="street.mp4"),
        size_bytes=11,
        params=detection_pb2.DetectionParams(),
        sampling=detection_pb2.VideoSampling(every=1),
        track=track,
        idempotency_key="",
        lines=[line.to_proto() for line in CountingLinesIn.model_validate_json(lines).root]
        if lines
        else [],
        zones=[zone.to_proto() for zone in CountingZonesIn.model_validate_json(zones).root]
        if zones
        else [],
    )


@pytest.mark.parametrize("track", [True, False])
async def test_the_upload_header_carries_the_tracking_choice(track: bool) -> None:
    video = _video_file(track=track)
    header, chunk = [message async for message in _upload_messages(video)]
    assert (header.header.track, header.header.sampling.every) == (track, 1)
    assert chunk.chunk == b"video bytes"


@pytest.mark.parametrize(
    ("params", "data", "loc"),
    [
        ({"track": "perhaps"}, {}, ("query", "track")),
        ({}, {"track": "perhaps"}, ("body", "track")),
        ({"track": "true"}, {"track": "true"}, ("body", "track")),
        ({}, {"tracks": "true"}, ("body", "tracks")),
    ],
)
async def test_bad_track_values_are_a_422_naming_them(
    authed: httpx.AsyncClient, params: dict[str, str], data: dict[str, str], loc: tuple[str, str]
) -> None:
    response = await authed.post(VIDEO, params=params, data=data, files=_one())
    _assert_invalid(response, *loc)


def _json(*regions: dict[str, Any]) -> str:
    """Counting lines or zones as their form field holds them."""
    return json.dumps(list(regions))


GATE = {"name": "gate", "start": [0, 360], "end": [1280, 360]}


@pytest.mark.parametrize(
    ("params", "data"),
    [
        ({}, {"track": "true", "every": "1", "lines": _json(GATE)}),
        ({"track": "true"}, {"lines": _json(GATE, {**GATE, "name": "lane 2", "end": [0, 0.5]})}),
        ({}, {"track": "true", "lines": _json(*({**GATE, "name": f"l{n}"} for n in range(16)))}),
        ({}, {"track": "true", "lines": _json({**GATE, "name": "é" * 64})}),
    ],
)
async def test_a_tracked_video_sends_its_counting_lines_on(
    authed: httpx.AsyncClient, params: dict[str, str], data: dict[str, str]
) -> None:
    _assert_sent_on(await authed.post(VIDEO, params=params, data=data, files=_one()))


async def test_the_upload_header_carries_the_counting_json() -> None:
    video = _video_file(
        track=True, lines=_json(GATE, {"name": "door", "start": [10.5, 0], "end": [10.5, 720]})
    )
    header, _ = [message async for message in _upload_messages(video)]
    sent = [
        (line.name, line.start.x, line.start.y, line.end.x, line.end.y)
        for line in header.header.lines
    ]
    assert sent == [("gate", 0, 360, 1280, 360), ("door", 10.5, 0, 10.5, 720)]


def _named(region: dict[str, Any], name: str) -> str:
    return _json({**region, "name": name})


async def _assert_refused(
    authed: httpx.AsyncClient, data: dict[str, str], loc: tuple[str | int, ...], says: str
) -> None:
    """A 422 at `loc` whose message says `says` and names the form field (body.lines ...)."""
    error = _assert_invalid(await authed.post(VIDEO, data=data, files=_one()), *loc)
    assert says in error["message"], error
    assert f"body.{loc[1]}" in error["message"], error


@pytest.mark.parametrize(
    ("data", "loc", "says"),
    [
        (
            {"track": "true", "lines": _json({"name": "gate", "start": [0, 360]})},
            ("body", "lines", 0, "end"),
            "required",
        ),
        (
            {"track": "true", "lines": _json({**GATE, "start": [0, 360, 1]})},
            ("body", "lines", 0, "start"),
            "at most 2",
        ),
        (
            {"track": "true", "lines": _json({**GATE, "start": ["0", 360]})},
            ("body", "lines", 0, "start", 0),
            "valid number",
        ),
        (
            {"track": "true", "lines": '[{"name": "gate", "start": [NaN, 360], "end": [1, 1]}]'},
            ("body", "lines", 0, "start", 0),
            "finite number",
        ),
        (
            {"track": "true", "lines": '[{"name": "gate", "start": [0, 1], "end": [1e400, 1]}]'},
            ("body", "lines", 0, "end", 0),
            "finite number",
        ),
        (
            {"track": "true", "lines": _json({**GATE, "end": [-1, 360]})},
            ("body", "lines", 0, "end", 0),
            "greater than or equal to 0",
        ),
        (
            {"track": "true", "lines": _json({**GATE, "end": [0.0, 360.0]})},
            ("body", "lines", 0),
            "starts where it ends",
        ),
    ],
)
async def test_bad_counting_lines_are_a_422_saying_what_is_wrong(
    authed: httpx.AsyncClient, data: dict[str, str], loc: tuple[str | int, ...], says: str
) -> None:
    """Where a line lies. What the list and the names may be, lines share with zones: below."""
    await _assert_refused(authed, data, loc, says)


QUEUE = {"name": "queue", "polygon": [[0, 0], [640, 0], [640, 200], [0, 200]]}
TRIANGLE = [[0, 0], [10, 0], [0, 10]]


@pytest.mark.parametrize(
    ("params", "data"),
    [
        ({}, {"track": "true", "every": "1", "zones": _json(QUEUE)}),
        ({"track": "true"}, {"zones": _json(QUEUE, {"name": "bay", "polygon": TRIANGLE})}),
        ({}, {"track": "true", "zones": _json(*({**QUEUE, "name": f"z{n}"} for n in range(16)))}),
        ({}, {"track": "true", "zones": _json({**QUEUE, "name": "é" * 64})}),
        (
            {},
            {
                "track": "true",
                "zones": _json(
                    {"name": "fan", "polygon": [*([10 * n, 0] for n in range(31)), [0, 90]]}
                ),
            },
        ),
        ({}, {"track": "true", "lines": _json(GATE), "zones": _json(QUEUE)}),
    ],
)
async def test_a_tracked_video_sends_its_counting_zones_on(
    authed: httpx.AsyncClient, params: dict[str, str], data: dict[str, str]
) -> None:
    _assert_sent_on(await authed.post(VIDEO, params=params, data=data, files=_one()))


async def test_the_upload_header_carries_the_counting_zones_beside_the_json() -> None:
    video = _video_file(
        track=True,
        lines=_json(GATE),
        zones=_json(QUEUE, {"name": "bay", "polygon": [[10.5, 0], [20, 0], [20, 7.25]]}),
    )
    header, _ = [message async for message in _upload_messages(video)]
    sent = [(zone.name, [(p.x, p.y) for p in zone.polygon]) for zone in header.header.zones]
    assert sent == [
        ("queue", [(0, 0), (640, 0), (640, 200), (0, 200)]),
        ("bay", [(10.5, 0), (20, 0), (20, 7.25)]),
    ]
    assert [line.name for line in header.header.lines] == ["gate"]


@pytest.mark.parametrize(
    ("data", "loc", "says"),
    [
        (
            {"track": "true", "zones": _json({"name": "queue"})},
            ("body", "zones", 0, "polygon"),
            "required",
        ),
        (
            {"track": "true", "zones": _json({"name": "queue", "polygon": [[0, 0], [9, 9]]})},
            ("body", "zones", 0, "polygon"),
            "at least 3",
        ),
        (
            {
                "track": "true",
                "zones": _json({"name": "many", "polygon": [[n, n % 2] for n in range(33)]}),
            },
            ("body", "zones", 0, "polygon"),
            "at most 32",
        ),
        (
            {
                "track": "true",
                "zones": _json({"name": "q", "polygon": [*TRIANGLE[:2], [1, 2, 3]]}),
            },
            ("body", "zones", 0, "polygon", 2),
            "at most 2",
        ),
        (
            {"track": "true", "zones": _json({"name": "q", "polygon": [*TRIANGLE[:2], ["0", 9]]})},
            ("body", "zones", 0, "polygon", 2, 0),
            "valid number",
        ),
        (
            {"track": "true", "zones": '[{"name": "q", "polygon": [[0, 0], [NaN, 9], [9, 0]]}]'},
            ("body", "zones", 0, "polygon", 1, 0),
            "finite number",
        ),
        (
            {"track": "true", "zones": _json({"name": "q", "polygon": [[0, 0], [9, -1], [9, 9]]})},
            ("body", "zones", 0, "polygon", 1, 1),
            "greater than or equal to 0",
        ),
        (
            {
                "track": "true",
                "zones": _json({"name": "flat", "polygon": [[0, 0], [5, 5], [9, 9]]}),
            },
            ("body", "zones", 0),
            "zone 'flat' encloses no area",
        ),
    ],
)
async def test_bad_counting_zones_are_a_422_saying_what_is_wrong(
    authed: httpx.AsyncClient, data: dict[str, str], loc: tuple[str | int, ...], says: str
) -> None:
    """Where a zone lies. What the list and the names may be, zones share with lines: below."""
    await _assert_refused(authed, data, loc, says)


# A valid line and a valid zone, each made wrong in the ways lines and zones share.
VALID_REGION = {"lines": GATE, "zones": QUEUE}


@pytest.mark.parametrize("field", ["lines", "zones"])
@pytest.mark.parametrize(
    ("value", "track", "inside", "says"),
    [
        pytest.param(lambda _: "gate: 0,360,1280,360", "true", (), "not valid JSON", id="text"),
        pytest.param(lambda _: "[{", "true", (), "not valid JSON", id="cut-short"),
        pytest.param(json.dumps, "true", (), "valid array", id="not-a-list"),
        pytest.param(lambda _: "[]", "true", (), "at least 1", id="none"),
        pytest.param(
            lambda region: _json(*({**region, "name": f"r{n}"} for n in range(17))),
            "true",
            (),
            "at most 16",
            id="too-many",
        ),
        pytest.param(
            lambda region: _json({**region, "colour": "red"}),
            "true",
            (0, "colour"),
            "Extra inputs",
            id="unknown-key",
        ),
        pytest.param(lambda r: _named(r, ""), "true", (0, "name"), "at least 1", id="no-name"),
        pytest.param(
            lambda r: _named(r, "n" * 65), "true", (0, "name"), "at most 64", id="long-name"
        ),
        pytest.param(
            lambda r: _named(r, "tab\tname"), "true", (0, "name"), "pattern", id="tab-in-name"
        ),
        pytest.param(
            lambda r: _named(r, "bay\u202e"), "true", (0, "name"), "pattern", id="bidi-in-name"
        ),
        pytest.param(
            lambda region: _json(region, region),
            "true",
            (),
            "is given twice",
            id="name-twice",
        ),
        pytest.param(lambda region: _json(region), None, (), "need track=true", id="no-track"),
        pytest.param(
            lambda region: _json(region), "false", (), "need track=true", id="track-false"
        ),
    ],
)
async def test_bad_counting_lines_and_zones_alike_are_a_422_saying_what_is_wrong(
    authed: httpx.AsyncClient,
    field: str,
    value: Callable[[dict[str, Any]], str],
    track: str | None,
    inside: tuple[str | int, ...],
    says: str,
) -> None:
    data = {field: value(VALID_REGION[field])}
    if track is not None:
        data["track"] = track
    await _assert_refused(authed, data, ("body", field, *inside), says)


async def test_batch_parameters_are_checked_the_same_way(authed: httpx.AsyncClient) -> None:
    response = await authed.post(BATCH, params={"iou": "7"}, files=_one("files"))
    _assert_invalid(response, "query", "iou")
    response = await authed.post(BATCH, data={"store": "true"}, files=_one("files"))
    _assert_invalid(response, "body", "store")


def _field(name: str, value: str) -> tuple[str, tuple[None, str]]:
    """A plain (non-file) multipart field, so a form can be multipart without any file."""
    return (name, (None, value))


@pytest.mark.parametrize(
    ("files", "loc"),
    [
        ([], "file"),
        (_one() * 2, "file"),
        (_one() + _one("files"), "file"),
        (_one("files") * 2, "files"),
    ],
)
async def test_the_image_route_takes_exactly_one_file(
    authed: httpx.AsyncClient, files: list[Any], loc: str
) -> None:
    response = await authed.post(IMAGE, files=[*files, _field("iou", "0.5")])
    error = _assert_invalid(response, "body", loc)
    assert "exactly one image" in error["message"]


async def test_a_text_field_is_not_a_file(authed: httpx.AsyncClient) -> None:
    response = await authed.post(IMAGE, files=[_field("file", "not a file")])
    _assert_invalid(response, "body", "file")


async def test_a_batch_needs_files(authed: httpx.AsyncClient) -> None:
    response = await authed.post(BATCH, files=[_field("iou", "0.5")])
    _assert_invalid(response, "body", "files")
    response = await authed.post(BATCH, files=_one())
    _assert_invalid(response, "body", "file")


async def test_a_batch_over_max_batch_files_is_a_422(
    open_detect_client: Callable[..., Any],
) -> None:
    client = await open_detect_client(MAX_BATCH_FILES=3)
    _assert_sent_on(await client.post(BATCH, files=_one("files") * 3))
    error = _assert_invalid(await client.post(BATCH, files=_one("files") * 4), "body", "files")
    assert "1 to 3 images" in error["message"]


@pytest.mark.parametrize("key", [b"", b"k" * 201, b"has\ttab", "ключ".encode()])
async def test_bad_idempotency_keys_are_a_422(authed: httpx.AsyncClient, key: bytes) -> None:
    response = await authed.post(BATCH, files=_one("files"), headers={"Idempotency-Key": key})
    _assert_invalid(response, "header", "Idempotency-Key")


async def test_a_good_idempotency_key_is_sent_on(authed: httpx.AsyncClient) -> None:
    response = await authed.post(
        BATCH, files=_one("files"), headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    _assert_sent_on(response)


# Sizes


async def test_an_image_over_max_upload_bytes_is_a_413(
    open_detect_client: Callable[..., Any],
) -> None:
    client = await open_detect_client(MAX_UPLOAD_BYTES=1000)
    _assert_sent_on(await client.post(IMAGE, files=_one(data=b"\xff" * 1000)))
    # Within the body limit's multipart headroom: refused by the route.
    error = _assert_error(
        await client.post(IMAGE, files=_one(data=b"\xff" * 1001, filename="big.jpg")),
        413,
        "payload_too_large",
    )
    assert "'big.jpg'" in error["message"]
    assert "1000 bytes" in error["message"]
    # Beyond the body limit: refused from Content-Length, before anything is read.
    big = b"\xff" * (base64_length(1000) + MULTIPART_OVERHEAD_BYTES + 1)
    _assert_error(await client.post(IMAGE, files=_one(data=big)), 413, "payload_too_large")


async def test_one_oversized_image_fails_its_own_item_not_the_batch(
    open_detect_client: Callable[..., Any],
) -> None:
    client = await open_detect_client(MAX_UPLOAD_BYTES=1000)
    files = _one("files") + _one("files", data=b"\xff" * 1001, filename="  ") + _one("files")
    # Passed on to the detection service (down here), the oversized file as a refused item.
    _assert_sent_on(await client.post(BATCH, files=files))
    only_oversized = _one("files", data=b"\xff" * 1001, filename="  ")
    error = _assert_error(await client.post(BATCH, files=only_oversized), 413, "payload_too_large")
    assert "#1" in error["message"] and "1000 bytes" in error["message"]


async def test_an_oversized_streamed_upload_is_a_413(
    open_detect_client: Callable[..., Any],
) -> None:
    client = await open_detect_client(MAX_UPLOAD_BYTES=1000)
    boundary = "detect-test-boundary"

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        for _ in range(100):
            yield b"\xff" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    response = await client.post(
        IMAGE,
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "content-length" not in response.request.headers
    _assert_error(response, 413, "payload_too_large")


def test_body_limits_leave_room_for_base64_and_the_framing(
    make_settings: Callable[..., GatewaySettings],
) -> None:
    """Images may come as base64 in JSON (a third longer than as files), with room for the
    multipart or JSON around them."""
    settings = make_settings(MAX_UPLOAD_BYTES=1000, MAX_BATCH_FILES=5)
    limits = dict(body_limits(settings))
    assert base64_length(1000) == len(base64.b64encode(b"x" * 1000)) == 1336
    assert limits["/api/v1/detect"] == 1336 + MULTIPART_OVERHEAD_BYTES
    assert limits[BATCH] == (
        base64_length(5 * 1000) + MULTIPART_OVERHEAD_BYTES + 5 * PART_OVERHEAD_BYTES
    )
    # A batch is one gRPC message, so the defaults (100 x 20 MiB) are capped by its size.
    defaults = make_settings()
    assert defaults.max_upload_bytes == 20 * 1024 * 1024
    assert defaults.max_batch_files == 100
    assert defaults.max_batch_bytes == MAX_IMAGE_BYTES_PER_CALL


def test_an_upload_limit_beyond_one_grpc_message_is_refused(
    make_settings: Callable[..., GatewaySettings],
) -> None:
    with pytest.raises(ValueError, match="MAX_UPLOAD_BYTES"):
        make_settings(MAX_UPLOAD_BYTES=MAX_IMAGE_BYTES_PER_CALL + 1)


# Reads, ids and route order


async def test_reads_are_sent_on(authed: httpx.AsyncClient) -> None:
    detection_id, job_id = uuid.uuid4(), uuid.uuid4()
    for path in (
        HISTORY,
        f"{HISTORY}?limit=100&offset=5&class_name=bus&since=2024-01-01T00:00:00Z&until=2030-01-01",
        f"/api/v1/detect/jobs/{job_id}",
        JOBS,
        f"{JOBS}?status=cancelled&kind=video&limit=100&offset=5",
        f"{JOBS}?status=pending&kind=batch",
        f"/api/v1/detect/{detection_id}",
        f"/api/v1/detect/{detection_id}/image",
        f"/api/v1/detect/{detection_id}/image?annotated=false",
    ):
        _assert_sent_on(await authed.get(path))


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/detect/not-a-uuid",
        "/api/v1/detect/not-a-uuid/image",
        "/api/v1/detect/jobs/not-a-uuid",
        "/api/v1/detect/jobs/",
        f"/api/v1/detect/{SOME_ID}/nothing",
    ],
)
async def test_malformed_ids_name_nothing(authed: httpx.AsyncClient, path: str) -> None:
    _assert_error(await authed.get(path), 404, "not_found")


async def test_cancelling_is_sent_on_for_a_job_id_and_names_nothing_else(
    authed: httpx.AsyncClient,
) -> None:
    _assert_sent_on(await authed.post(f"{JOBS}/{uuid.uuid4()}/cancel"))
    _assert_error(await authed.post(f"{JOBS}/not-a-uuid/cancel"), 404, "not_found")
    response = await authed.get(f"{JOBS}/{uuid.uuid4()}/cancel")
    _assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


async def test_deleting_is_sent_on_for_an_id_and_names_nothing_else(
    authed: httpx.AsyncClient,
) -> None:
    """A detection, a job and a filtered history each have their own DELETE; the fixed
    paths beside them are never read as an id, whatever the method."""
    _assert_sent_on(await authed.delete(f"/api/v1/detect/{uuid.uuid4()}"))
    _assert_sent_on(await authed.delete(f"{JOBS}/{uuid.uuid4()}"))
    _assert_sent_on(await authed.delete(HISTORY, params={"class_name": "bus"}))
    _assert_sent_on(await authed.delete(HISTORY, params={"all": "true"}))
    for path in ("/api/v1/detect/not-a-uuid", f"{JOBS}/not-a-uuid"):
        _assert_error(await authed.delete(path), 404, "not_found")
    # The whole history goes only when asked for: no filter and no all=true is refused here.
    unfiltered = await authed.delete(HISTORY)
    _assert_error(unfiltered, 422, "validation_error")
    assert "all=true" in unfiltered.text
    response = await authed.delete(JOBS)
    _assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"


async def test_upload_paths_are_not_read_as_ids(authed: httpx.AsyncClient) -> None:
    for path in (IMAGE, BATCH):
        response = await authed.get(path)
        _assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
        (f"offset={2**31}", "offset"),
        ("class_name=", "class_name"),
        ("class_name=%20%20", "class_name"),
        ("since=yesterday", "since"),
        ("since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z", "since"),
        ("until=0001-01-01T00:00:00%2B01:00", "until"),
    ],
)
async def test_bad_history_queries_are_a_422(
    authed: httpx.AsyncClient, query: str, name: str
) -> None:
    _assert_invalid(await authed.get(f"{HISTORY}?{query}"), "query", name)


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("offset=-1", "offset"),
        (f"offset={2**31}", "offset"),
        ("status=done", "status"),
        ("status=", "status"),
        ("kind=audio", "kind"),
    ],
)
async def test_bad_job_list_queries_are_a_422(
    authed: httpx.AsyncClient, query: str, name: str
) -> None:
    """The same page limits as the history's, and only the statuses and kinds jobs have."""
    _assert_invalid(await authed.get(f"{JOBS}?{query}"), "query", name)


async def test_annotated_must_be_a_boolean(authed: httpx.AsyncClient) -> None:
    response = await authed.get(f"/api/v1/detect/{uuid.uuid4()}/image?annotated=maybe")
    _assert_invalid(response, "query", "annotated")


async def test_browsers_may_send_an_idempotency_key_and_read_the_location(
    app_client: Callable[..., Any],
) -> None:
    _, client = await app_client(CORS_ORIGINS="https://app.example")
    response = await client.options(
        BATCH,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Idempotency-Key",
        },
    )
    assert response.status_code == 200
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "idempotency-key" in allowed
    answered = await client.get(HISTORY, headers={"Origin": "https://app.example"})
    assert "location" in answered.headers["access-control-expose-headers"].lower()


# The document


def test_openapi_describes_the_detection_routes(
    make_settings: Callable[..., GatewaySettings],
) -> None:
    spec = create_app(make_settings()).openapi()
    paths = spec["paths"]
    schemas = spec["components"]["schemas"]

    image = paths[IMAGE]["post"]
    body = image["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"multipart/form-data", "application/json"}
    form = schemas["DetectImageForm"]
    assert form["additionalProperties"] is False
    assert {
        "file",
        "files",
        "store",
        "confidence",
        "iou",
        "classes",
        "max_detections",
        "class_confidence",
        "tile_size",
        "tile_overlap",
        "regions",
        "model",
        "metadata",
    } == set(form["properties"])
    # The form's fields, with the image by URL or as base64 in place of the file.
    by_url = body["content"]["application/json"]["schema"]
    assert by_url["additionalProperties"] is False
    sources = {"url", "image_base64", "filename"}
    assert set(by_url["properties"]) == set(form["properties"]) - {"file", "files"} | sources
    assert by_url["properties"]["image_base64"]["contentEncoding"] == "base64"
    query = {p["name"] for p in image["parameters"] if p["in"] == "query"}
    assert query == {
        "confidence",
        "iou",
        "classes",
        "max_detections",
        "class_confidence",
        "tile_size",
        "tile_overlap",
        "store",
        "model",
    }
    assert image["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DetectionOut"
    }
    # 404: an unknown model.
    assert {"400", "401", "404", "413", "415", "422", "503"} <= set(image["responses"])
    assert "Retry-After" in image["responses"]["503"]["headers"]
    assert set(schemas["DetectedObjectOut"]["properties"]) == {
        "class",
        "class_id",
        "confidence",
        "bbox",
        "track_id",
    }
    video = paths[VIDEO]["post"]
    video_form = video["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert video_form == {"$ref": "#/components/schemas/DetectVideoForm"}
    assert schemas["DetectVideoForm"]["properties"]["track"]["type"] == "boolean"
    track_query = next(p for p in video["parameters"] if p["name"] == "track")
    assert (track_query["in"], track_query["schema"]["type"]) == ("query", "boolean")
    assert "track=true" in video["description"]
    assert "tracked" in schemas["VideoInfoOut"]["properties"]
    # Counting lines (ADR 0039): a JSON form field whose shape and limits the document gives.
    lines = schemas["DetectVideoForm"]["properties"]["lines"]
    assert (lines["type"], lines["contentMediaType"]) == ("string", "application/json")
    assert (lines["contentSchema"]["minItems"], lines["contentSchema"]["maxItems"]) == (1, 16)
    line = lines["contentSchema"]["items"]
    assert line["required"] == ["name", "start", "end"]
    assert line["properties"]["name"]["maxLength"] == 64
    assert "$ref" not in json.dumps(lines)
    assert "lines" in video["description"] and "line_counts" in video["description"]
    assert not any(p["name"] == "lines" for p in video["parameters"])
    assert {"lines", "line_counts"} <= set(schemas["VideoInfoOut"]["properties"])
    assert set(schemas["LineCountOut"]["properties"]) == {
        "line",
        "class_id",
        "class_name",
        "crossed_in",
        "crossed_out",
    }
    assert "crossings" in schemas["VideoFrameOut"]["properties"]
    assert schemas["LineCrossingOut"]["properties"]["direction"]["enum"] == ["in", "out"]
    # Counting zones (ADR 0042): the same kind of field; only a video's objects carry zones.
    zones = schemas["DetectVideoForm"]["properties"]["zones"]
    assert (zones["type"], zones["contentMediaType"]) == ("string", "application/json")
    assert (zones["contentSchema"]["minItems"], zones["contentSchema"]["maxItems"]) == (1, 16)
    zone = zones["contentSchema"]["items"]
    assert zone["required"] == ["name", "polygon"]
    assert zone["properties"]["name"]["maxLength"] == 64
    polygon = zone["properties"]["polygon"]
    assert (polygon["minItems"], polygon["maxItems"]) == (3, 32)
    assert "$ref" not in json.dumps(zones)
    assert "zones" in video["description"] and "zone_counts" in video["description"]
    assert not any(p["name"] == "zones" for p in video["parameters"])
    assert {"zones", "zone_counts"} <= set(schemas["VideoInfoOut"]["properties"])
    assert set(schemas["ZoneCountOut"]["properties"]) == {
        "zone",
        "class_id",
        "class_name",
        "visited",
        "peak",
        "mean_stay_seconds",
    }
    frame_objects = schemas["VideoFrameOut"]["properties"]["detections"]["items"]
    assert frame_objects == {"$ref": "#/components/schemas/VideoObjectOut"}
    assert set(schemas["VideoObjectOut"]["properties"]) == {
        *schemas["DetectedObjectOut"]["properties"],
        "zones",
    }

    batch = paths[BATCH]["post"]
    assert schemas["DetectBatchForm"]["required"] == ["files"]
    by_urls = batch["requestBody"]["content"]["application/json"]["schema"]
    assert by_urls["required"] == ["images"]
    # Written in place: a `$defs` reference would not resolve inside the OpenAPI document.
    assert "$ref" not in json.dumps(by_urls)
    assert set(by_urls["properties"]["images"]["items"]["properties"]) == sources
    accepted = batch["responses"]["202"]
    assert "Location" in accepted["headers"]
    assert accepted["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobOut"
    }
    assert "200" not in batch["responses"]
    assert any(p["name"] == "Idempotency-Key" for p in batch["parameters"])

    picture = paths["/api/v1/detect/{detection_id}/image"]["get"]["responses"]["200"]
    assert set(picture["content"]) == {"image/jpeg", "image/png", "image/webp", "image/bmp"}
    for path in ("/api/v1/detect/{detection_id}", "/api/v1/detect/jobs/{job_id}"):
        (parameter,) = paths[path]["get"]["parameters"]
        assert parameter["schema"]["format"] == "uuid"
    assert json.dumps(paths[HISTORY]["get"]["responses"]["200"]).count("DetectionListOut") == 1

    listing = paths[JOBS]["get"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobListOut"
    }
    query = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert set(query) == {"status", "kind", "metadata", "rerun_of", "limit", "offset"}
    # The jobs that ran one job again (ADR 0058): a job id.
    assert query["rerun_of"]["format"] == "uuid"
    # `metadata=key:value`, repeatable: the jobs holding every pair given.
    assert (query["metadata"]["type"], query["metadata"]["items"]) == ("array", {"type": "string"})
    # Submitted as JSON text in a form, with the pairs' limits in its schema.
    metadata_form = schemas["DetectBatchForm"]["properties"]["metadata"]
    assert metadata_form["contentMediaType"] == "application/json"
    assert metadata_form["contentSchema"]["maxProperties"] == 16
    assert schemas["DetectVideoForm"]["properties"]["metadata"] == metadata_form
    assert query["status"]["enum"] == ["pending", "processing", "completed", "failed", "cancelled"]
    assert query["kind"]["enum"] == ["batch", "video"]
    assert (query["limit"]["maximum"], query["limit"]["default"]) == (100, 20)
    # A list is for finding a job: its items are read one job at a time.
    assert "items" not in schemas["JobSummaryOut"]["properties"]
    assert "items" in schemas["JobOut"]["properties"]
    cancel = paths["/api/v1/detect/jobs/{job_id}/cancel"]["post"]
    assert cancel["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobOut"
    }
    assert {"401", "404", "409", "422", "503"} <= set(cancel["responses"])
    for path in ("/api/v1/detect/{detection_id}", "/api/v1/detect/jobs/{job_id}"):
        deletion = paths[path]["delete"]
        assert {"204", "401", "404", "409", "422", "503"} <= set(deletion["responses"])
        assert "content" not in deletion["responses"]["204"]


# Exports (gateway.routers.exports): the query is checked here, the file is made upstream

JOB_EXPORT = f"/api/v1/detect/jobs/{SOME_ID}/export"
HISTORY_EXPORT = "/api/v1/detect/history/export"


@pytest.mark.parametrize("path", [f"{JOB_EXPORT}?format=coco", f"{HISTORY_EXPORT}?format=csv"])
async def test_exports_need_credentials(client: httpx.AsyncClient, path: str) -> None:
    _assert_error(await client.get(path), 401, "unauthenticated")


@pytest.mark.parametrize(
    "path",
    [
        f"{JOB_EXPORT}?format=coco",
        f"{JOB_EXPORT}?format=yolo",
        f"{HISTORY_EXPORT}?format=csv",
        f"{HISTORY_EXPORT}?format=coco&class_name=bus&since=2024-01-01&until=2030-01-01",
    ],
)
async def test_valid_exports_are_sent_on(authed: httpx.AsyncClient, path: str) -> None:
    _assert_sent_on(await authed.get(path))


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (f"{JOB_EXPORT}?format=xml", "format"),
        (JOB_EXPORT, "format"),
        (f"{HISTORY_EXPORT}?format=COCO", "format"),
        (f"{HISTORY_EXPORT}?format=csv&class_name=%20", "class_name"),
        (f"{HISTORY_EXPORT}?format=csv&since=2025-01-02&until=2025-01-01", "since"),
    ],
)
async def test_bad_export_queries_are_a_422_naming_them(
    authed: httpx.AsyncClient, path: str, name: str
) -> None:
    error = _assert_invalid(await authed.get(path), "query", name)
    if name == "format" and "format=" in path:
        assert "'coco', 'yolo' or 'csv'" in error["message"], error


async def test_a_malformed_job_id_exports_nothing(authed: httpx.AsyncClient) -> None:
    _assert_error(
        await authed.get("/api/v1/detect/jobs/not-a-uuid/export?format=csv"), 404, "not_found"
    )
