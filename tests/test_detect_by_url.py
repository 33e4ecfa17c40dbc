"""Images by URL and as base64 (ADR 0027), end to end: the gateway fetches from a real HTTP
server on 127.0.0.1 (the session stack runs with IMAGE_URL_ALLOW_PRIVATE=true, as tests
and local development may) and the detection service answers as it does for an upload.

The address rules themselves (loopback, private and metadata addresses, schemes,
credentials, redirects re-checked) are proven on the gateway's fetcher with
IMAGE_URL_ALLOW_PRIVATE=false, as in production (gateway/tests/test_media_urls.py).
"""

import asyncio
import base64
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from objectvision_client import AsyncClient, TokenPair
from objectvision_devstack.answers import api_error_with_request_id
from objectvision_devstack.api_users import Account, signed_in
from objectvision_devstack.image_server import ImageServer, image_server
from objectvision_devstack.pixel_bombs import png_bomb
from objectvision_devstack.stack import Stack
from objectvision_devstack.waiting import eventually

IMAGE = "/api/v1/detect/image"
BATCH = "/api/v1/detect/batch"
MIB = 1024 * 1024
JOB_TIMEOUT_SECONDS = 60
SHARED = Path(os.environ.get("OBJECTVISION_SHARED_DIR", Path(__file__).parents[2] / "shared"))


@functools.cache
def _sample(name: str) -> bytes:
    return (SHARED / "images" / name).read_bytes()


@pytest.fixture(scope="module")
def host() -> Iterator[ImageServer]:
    files = {
        "bus.jpg": _sample("bus.jpg"),
        "zidane.jpg": _sample("zidane.jpg"),
        "bomb.png": png_bomb(),
    }
    with image_server(files) as server:
        yield server


@pytest.fixture(scope="module")
async def user(stack: Stack) -> Account:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        return await signed_in(client, prefix="by-url", name="By URL")


@pytest.fixture(scope="module")
async def uploaded(stack: Stack, user: Account) -> dict[str, Any]:
    """What a multipart upload of bus.jpg answers: the reference every other way must match."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        response = await client.post(
            IMAGE,
            files={"file": ("bus.jpg", _sample("bus.jpg"), "image/jpeg")},
            headers=user.headers,
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _assert_same_objects(answer: dict[str, Any], reference: dict[str, Any]) -> None:
    """The same objects as the upload's, in the same order. Scores and boxes to within what
    batching the image with other callers' can change in float32 (ADR 0005)."""
    assert answer["image"] == reference["image"]
    assert [obj["class"] for obj in answer["detections"]] == [
        obj["class"] for obj in reference["detections"]
    ]
    for got, want in zip(answer["detections"], reference["detections"], strict=True):
        assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-3)
        for side in ("x1", "y1", "x2", "y2"):
            assert got["bbox"][side] == pytest.approx(want["bbox"][side], abs=0.5)


def _client(stack: Stack, user: Account) -> AsyncClient:
    """The Python client, signed in as `user`."""
    tokens = TokenPair(access_token=user.access_token, refresh_token=user.refresh_token)
    return AsyncClient(stack.gateway_url, tokens=tokens)


async def test_an_image_by_url_gets_the_answer_its_upload_gets(
    gateway_client: httpx.AsyncClient,
    stack: Stack,
    host: ImageServer,
    user: Account,
    uploaded: dict[str, Any],
) -> None:
    async with _client(stack, user) as client:
        answer = (await client.detect_url(host.file_url("bus.jpg"))).raw
    _assert_same_objects(answer, uploaded)
    assert answer["filename"] == "bus.jpg"
    assert answer["detection_id"] and answer["detection_id"] != uploaded["detection_id"]
    stored = await gateway_client.get(
        f"/api/v1/detect/{answer['detection_id']}/image",
        params={"annotated": "false"},
        headers=user.headers,
    )
    assert stored.content == _sample("bus.jpg")


async def test_base64_and_data_urls_get_the_answer_the_upload_gets(
    gateway_client: httpx.AsyncClient, user: Account, uploaded: dict[str, Any]
) -> None:
    encoded = base64.b64encode(_sample("bus.jpg")).decode()
    for body in (
        {"image_base64": encoded, "filename": "bus.jpg"},
        {"image_base64": f"data:image/jpeg;base64,{encoded}", "store": False},
    ):
        response = await gateway_client.post(IMAGE, json=body, headers=user.headers)
        assert response.status_code == 200, response.text
        _assert_same_objects(response.json(), uploaded)
    assert response.json()["detection_id"] is None
    assert response.json()["filename"] == ""


async def test_redirects_to_an_allowed_url_are_followed_and_parameters_apply(
    gateway_client: httpx.AsyncClient, host: ImageServer, user: Account
) -> None:
    response = await gateway_client.post(
        IMAGE,
        params={"classes": "bus"},
        json={"url": f"{host.url}/redirect/3/files/bus.jpg", "filename": "renamed.jpg"},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [obj["class"] for obj in answer["detections"]] == ["bus"]
    assert answer["filename"] == "renamed.jpg"


async def test_a_missing_remote_image_is_a_clear_422(
    gateway_client: httpx.AsyncClient, host: ImageServer, user: Account
) -> None:
    response = await gateway_client.post(
        IMAGE, json={"url": f"{host.url}/files/nothing.jpg"}, headers=user.headers
    )
    message = api_error_with_request_id(response, 422, "image_url_unreachable")["message"]
    assert "answered 404 Not Found" in message


async def test_an_oversized_remote_body_is_cut_off_with_a_413(
    gateway_client: httpx.AsyncClient, host: ImageServer, user: Account
) -> None:
    declared = await gateway_client.post(
        IMAGE, json={"url": f"{host.url}/declared-huge"}, headers=user.headers
    )
    assert "1024.0 MiB" in api_error_with_request_id(declared, 413, "payload_too_large")["message"]
    host.endless_done.clear()
    endless = await gateway_client.post(
        IMAGE, json={"url": f"{host.url}/endless"}, headers=user.headers
    )
    assert (
        "over 20.0 MiB" in api_error_with_request_id(endless, 413, "payload_too_large")["message"]
    )
    # The gateway hung up near MAX_UPLOAD_BYTES (20 MiB), not at the server's 1 GiB.
    await eventually(host.endless_done.is_set, within=10, what="the server stops sending")
    assert host.endless_bytes_sent < 64 * MIB


async def test_a_pixel_bomb_by_url_is_refused_from_its_header(
    gateway_client: httpx.AsyncClient, host: ImageServer, user: Account
) -> None:
    response = await gateway_client.post(
        IMAGE, json={"url": host.file_url("bomb.png")}, headers=user.headers
    )
    assert "50000x50000" in api_error_with_request_id(response, 413, "payload_too_large")["message"]


@pytest.mark.parametrize(
    ("body", "code", "said"),
    [
        ({}, "validation_error", "exactly one of url or image_base64"),
        (
            {"url": "https://example.com/bus.jpg", "image_base64": "aGVsbG8="},
            "validation_error",
            "exactly one of url or image_base64",
        ),
        ({"image_base64": "not base64!"}, "validation_error", "image_base64"),
        ({"url": "ftp://example.com/bus.jpg"}, "image_url_forbidden", "http or https"),
        ({"url": "https://u:p@example.com/bus.jpg"}, "image_url_forbidden", "credentials"),
    ],
)
async def test_bodies_that_name_no_usable_image_are_a_422(
    gateway_client: httpx.AsyncClient, user: Account, body: dict[str, Any], code: str, said: str
) -> None:
    response = await gateway_client.post(IMAGE, json=body, headers=user.headers)
    assert said in api_error_with_request_id(response, 422, code)["message"]


async def test_a_batch_by_urls_runs_and_a_failed_fetch_is_its_own_failed_item(
    gateway_client: httpx.AsyncClient, stack: Stack, host: ImageServer, user: Account
) -> None:
    images = [
        {"url": host.file_url("bus.jpg")},
        {"url": f"{host.url}/redirect/1/files/zidane.jpg"},
        {"url": f"{host.url}/status/404", "filename": "gone.jpg"},
        {"image_base64": base64.b64encode(_sample("bus.jpg")).decode(), "filename": "inline.jpg"},
    ]
    response = await gateway_client.post(BATCH, json={"images": images}, headers=user.headers)
    assert response.status_code == 202, response.text
    async with _client(stack, user) as client, asyncio.timeout(JOB_TIMEOUT_SECONDS):
        job = await client.wait_for_job(response.json()["job_id"], poll_seconds=0.25)
    assert job.status == "completed", job
    items = {item.filename: item for item in job.items}
    assert set(items) == {"bus.jpg", "zidane.jpg", "gone.jpg", "inline.jpg"}
    for name in ("bus.jpg", "zidane.jpg", "inline.jpg"):
        assert items[name].status == "completed" and items[name].object_count > 0, items[name]
    assert items["gone.jpg"].status == "failed"
    assert "404 Not Found" in (items["gone.jpg"].error or "")


async def test_a_batch_of_urls_is_refused_as_soon_as_its_images_pass_the_batch_limit(
    gateway_client: httpx.AsyncClient, stack: Stack
) -> None:
    """Twelve URLs of a full-size image each (20 MiB) pass the batch's 63 MiB together: the
    gateway stops once the ones it fetches at once (8) have brought that much, and never asks
    for the rest, rather than holding all twelve (240 MiB) before adding them up."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        user = await signed_in(client, prefix="by-url", name="Big Batch")
    full_size = b"\xff\xd8\xff" + b"\0" * (20 * MIB - 3)
    with image_server({"full.jpg": full_size}) as big:
        images = [{"url": big.file_url("full.jpg")}] * 12
        response = await gateway_client.post(BATCH, json={"images": images}, headers=user.headers)
        requested = len(big.received())
    message = api_error_with_request_id(response, 413, "payload_too_large")["message"]
    assert message == (
        "the images are over 63.0 MiB together; at most 63.0 MiB per batch are accepted:"
        " split them into several jobs"
    )
    assert 4 <= requested <= 8, requested
    jobs = await gateway_client.get("/api/v1/detect/jobs", headers=user.headers)
    assert jobs.json()["total"] == 0, "a refused batch makes no job"


# The session stack's RATE_LIMIT_IMAGE_URLS (tests/conftest.py).
URL_FETCHES_PER_HOUR = 30


async def test_an_accounts_image_urls_are_counted_before_any_is_fetched(
    gateway_client: httpx.AsyncClient, stack: Stack
) -> None:
    """The limit is per account and all or nothing per request; uploads and base64 images
    do not count."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        fetcher = await signed_in(client, prefix="url-limit", name="Many URLs")
        neighbour = await signed_in(client, prefix="url-limit", name="Next Door")
    with image_server({"bus.jpg": _sample("bus.jpg")}) as counted:
        gone = [{"url": f"{counted.url}/status/404"}]
        too_many = await gateway_client.post(
            BATCH, json={"images": gone * (URL_FETCHES_PER_HOUR + 1)}, headers=fetcher.headers
        )
        assert (
            "nothing was fetched"
            in api_error_with_request_id(too_many, 429, "rate_limited")["message"]
        )
        assert counted.received() == []

        # Exactly the allowance: every URL is fetched (each 404, so no job), and it is spent.
        all_gone = await gateway_client.post(
            BATCH, json={"images": gone * URL_FETCHES_PER_HOUR}, headers=fetcher.headers
        )
        api_error_with_request_id(all_gone, 422, "image_url_unreachable")
        assert len(counted.received()) == URL_FETCHES_PER_HOUR
        one_more = await gateway_client.post(
            IMAGE, json={"url": counted.file_url("bus.jpg")}, headers=fetcher.headers
        )
        api_error_with_request_id(one_more, 429, "rate_limited")
        assert 1 <= int(one_more.headers["retry-after"]) <= 3600
        assert len(counted.received()) == URL_FETCHES_PER_HOUR

        inline = {"image_base64": base64.b64encode(_sample("bus.jpg")).decode()}
        assert (
            await gateway_client.post(IMAGE, json=inline, headers=fetcher.headers)
        ).status_code == 200
        other = await gateway_client.post(
            IMAGE, json={"url": counted.file_url("bus.jpg")}, headers=neighbour.headers
        )
        assert other.status_code == 200, other.text
