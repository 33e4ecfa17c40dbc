"""The public detection API end to end: gateway -> detection-service -> Triton, PostgreSQL,
Redis, the job workers and storage, all real (tests/conftest.py starts them).

Expected objects are the reference ones for the sample images (/work/shared/images/README.md):
yolov8n at confidence 0.25 finds four people and a bus (about 0.83) in bus.jpg (810x1080).
Every test signs up its own users (own X-Forwarded-For, as in test_auth_api.py), so history
totals are exact. ONNX Runtime on a small CPU does 15-30 images/s: requests are few.
"""

import asyncio
import base64
import csv
import dataclasses
import functools
import io
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from objectvision_client import AsyncClient
from objectvision_devstack.answers import api_error, api_error_with_request_id
from objectvision_devstack.api_users import PASSWORD, Account, fresh_network, signed_in
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.pixel_bombs import png_bomb
from objectvision_devstack.stack import Stack

IMAGE = "/api/v1/detect/image"
BATCH = "/api/v1/detect/batch"
HISTORY = "/api/v1/detect/history"
BUS_SIZE = (810, 1080)
JOB_TIMEOUT_SECONDS = 60.0
MIB = 1024 * 1024


def _shared_images() -> Path:
    """OBJECTVISION_SHARED_DIR, else the `shared/` folder beside the repository."""
    shared = os.environ.get("OBJECTVISION_SHARED_DIR")
    root = Path(shared) if shared else Path(__file__).resolve().parents[1].parent / "shared"
    return root / "images"


IMAGES = _shared_images()
pytestmark = pytest.mark.skipif(
    not (IMAGES / "bus.jpg").exists(),
    reason=f"sample images not found under {IMAGES} (set OBJECTVISION_SHARED_DIR)",
)


def _read(name: str) -> bytes:
    return (IMAGES / name).read_bytes()


def _coco8() -> list[Path]:
    return sorted(IMAGES.glob("coco8/images/*/*.jpg"))


async def _user(client: httpx.AsyncClient) -> Account:
    # Sign-up names no account (it answers alike for a taken address): read back who we are.
    return await signed_in(
        client, prefix="detect", name="Detector", network=fresh_network(), read_back=True
    )


@pytest.fixture
async def user(gateway_client: httpx.AsyncClient) -> Account:
    return await _user(gateway_client)


async def _detect(
    client: httpx.AsyncClient,
    user: Account,
    data: bytes,
    filename: str = "bus.jpg",
    **params: str,
) -> httpx.Response:
    return await client.post(
        IMAGE,
        params=params,
        files={"file": (filename, data, "image/jpeg")},
        headers=user.headers,
    )


async def _detect_ok(
    client: httpx.AsyncClient, user: Account, data: bytes, **params: str
) -> dict[str, Any]:
    response = await _detect(client, user, data, **params)
    assert response.status_code == 200, response.text
    return response.json()


async def _history(client: httpx.AsyncClient, user: Account, **params: Any) -> dict[str, Any]:
    response = await client.get(HISTORY, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _classes(body: dict[str, Any]) -> Counter[str]:
    return Counter(obj["class"] for obj in body["detections"])


def _assert_bus_result(body: dict[str, Any]) -> None:
    """bus.jpg: four people and a bus, boxes in original pixels."""
    width, height = BUS_SIZE
    assert body["image"] == {"width": width, "height": height}
    assert _classes(body) == Counter({"person": 4, "bus": 1}), body["detections"]
    confidences = [obj["confidence"] for obj in body["detections"]]
    assert confidences == sorted(confidences, reverse=True)
    for obj in body["detections"]:
        box = obj["bbox"]
        assert 0 <= box["x1"] < box["x2"] <= width, box
        assert 0 <= box["y1"] < box["y2"] <= height, box
        assert box["width"] == pytest.approx(box["x2"] - box["x1"], abs=0.02)
        assert box["height"] == pytest.approx(box["y2"] - box["y1"], abs=0.02)
        assert obj["class_id"] == {"person": 0, "bus": 5}[obj["class"]]
    (bus,) = (obj for obj in body["detections"] if obj["class"] == "bus")
    assert bus["confidence"] == pytest.approx(0.83, abs=0.05)
    # In original pixels, not the 640x640 model input: the bus spans most of the width.
    assert bus["bbox"]["width"] > 0.75 * width
    assert bus["bbox"]["y2"] > 640


async def _wait_for_job(client: httpx.AsyncClient, user: Account, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while True:
        response = await client.get(f"/api/v1/detect/jobs/{job_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        await asyncio.sleep(0.25)


# One image


async def test_bus_jpg_has_four_people_and_a_bus(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    body = await _detect_ok(gateway_client, user, _read("bus.jpg"))
    _assert_bus_result(body)
    assert uuid.UUID(body["detection_id"])
    assert body["filename"] == "bus.jpg"
    assert body["timings"]["total_ms"] > 0
    assert body["counts"] == {"person": 4, "bus": 1}
    # Other tests may have detected bus.jpg already: then the result cache answered.
    assert body["cached"] or body["timings"]["inference_ms"] > 0


async def test_the_same_image_is_never_detected_twice(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    """A re-upload with the same parameters comes from the result cache, and says so."""
    note = f"cache test {uuid.uuid4()}".encode()
    bus = _read("bus.jpg")
    fresh = bus[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + bus[2:]
    first = await _detect_ok(gateway_client, user, fresh, store="false")
    again = await _detect_ok(gateway_client, user, fresh, store="false")
    assert not first["cached"] and again["cached"]
    assert first["timings"]["inference_ms"] > 0 and again["timings"]["inference_ms"] == 0
    assert again["detections"] == first["detections"]
    other = await _detect_ok(gateway_client, user, fresh, store="false", confidence="0.5")
    assert not other["cached"]


async def test_a_stored_detection_reads_back_with_its_images(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    original = _read("bus.jpg")
    detected = await _detect_ok(gateway_client, user, original)
    path = f"/api/v1/detect/{detected['detection_id']}"

    response = await gateway_client.get(path, headers=user.headers)
    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["detection_id"] == detected["detection_id"]
    assert stored["status"] == "completed"
    assert stored["job_id"] is None
    assert stored["created_at"]
    assert stored["image"] == detected["image"]
    assert _classes(stored) == _classes(detected)
    for mine, kept in zip(detected["detections"], stored["detections"], strict=True):
        assert kept["class"] == mine["class"]
        assert kept["confidence"] == pytest.approx(mine["confidence"], abs=1e-3)
        for corner in ("x1", "y1", "x2", "y2"):
            assert kept["bbox"][corner] == pytest.approx(mine["bbox"][corner], abs=0.05)

    annotated = await gateway_client.get(f"{path}/image", headers=user.headers)
    assert annotated.status_code == 200, annotated.text
    assert annotated.headers["content-type"] == "image/jpeg"
    assert annotated.headers["x-content-type-options"] == "nosniff"
    drawn = cv2.imdecode(np.frombuffer(annotated.content, np.uint8), cv2.IMREAD_COLOR)
    assert drawn is not None
    assert drawn.shape == (1080, 810, 3)

    as_uploaded = await gateway_client.get(
        f"{path}/image", params={"annotated": "false"}, headers=user.headers
    )
    assert as_uploaded.status_code == 200, as_uploaded.text
    assert as_uploaded.headers["content-type"] == "image/jpeg"
    assert as_uploaded.content == original
    plain = cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_COLOR)
    # The boxes are drawn: the annotated picture differs from the upload, but not everywhere.
    changed = np.any(np.abs(drawn.astype(int) - plain.astype(int)) > 60, axis=2).mean()
    assert 0.001 < changed < 0.5


async def test_a_retried_stored_detection_is_answered_once_with_an_idempotency_key(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    key = {"Idempotency-Key": f"camera-7-frame-{uuid.uuid4()}"}

    async def send(**headers: str) -> httpx.Response:
        return await gateway_client.post(
            IMAGE,
            files={"file": ("bus.jpg", _read("bus.jpg"), "image/jpeg")},
            headers={**user.headers, **headers},
        )

    first = await send(**key)
    again = await send(**key)

    assert first.status_code == again.status_code == 200, again.text
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["detection_id"] == first.json()["detection_id"]
    assert _classes(again.json()) == _classes(first.json())
    assert (await _history(gateway_client, user))["total"] == 1

    unstored = await gateway_client.post(
        IMAGE,
        files={"file": ("bus.jpg", _read("bus.jpg"), "image/jpeg")},
        data={"store": "false"},
        headers={**user.headers, **key},
    )
    assert "store=true" in api_error(unstored, 422, "validation_error")["message"]
    assert (await _history(gateway_client, user))["total"] == 1


async def test_parameters_filter_the_objects(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    bus = _read("bus.jpg")
    only_bus = await _detect_ok(gateway_client, user, bus, classes="bus", store="false")
    assert _classes(only_bus) == Counter({"bus": 1})
    only_people = await _detect_ok(gateway_client, user, bus, classes="0", store="false")
    assert _classes(only_people) == Counter({"person": 4})
    confident = await _detect_ok(gateway_client, user, bus, confidence="0.9", store="false")
    assert len(confident["detections"]) < 5
    assert all(obj["confidence"] >= 0.9 for obj in confident["detections"])
    capped = await _detect_ok(gateway_client, user, bus, max_detections="2", store="false")
    assert len(capped["detections"]) == 2
    # A class's own minimum (ADR 0050): no person is that sure, the bus keeps the default.
    sure_people = await _detect_ok(
        gateway_client, user, bus, class_confidence="person:0.99", store="false"
    )
    assert _classes(sure_people) == Counter({"bus": 1})
    garbled = await _detect(gateway_client, user, bus, class_confidence="person=0.5")
    assert "class:score" in api_error(garbled, 422, "validation_error")["message"]

    # Tiles (ADR 0051): bus.jpg in 640-pixel tiles still holds its four people and its bus,
    # each once, in the image's pixels; bounds and the tile count are checked before work.
    tiled = await _detect_ok(gateway_client, user, bus, tile_size="640", store="false")
    _assert_bus_result(tiled)
    too_small = await _detect(gateway_client, user, bus, tile_size="64")
    assert "tile_size" in api_error(too_small, 422, "validation_error")["message"]
    alone = await _detect(gateway_client, user, bus, tile_overlap="0.3")
    assert "needs a tile_size" in api_error(alone, 422, "invalid_argument")["message"]
    too_many = await _detect(gateway_client, user, bus, tile_size="128", tile_overlap="0.5")
    assert "at most 64 are detected" in api_error(too_many, 422, "invalid_argument")["message"]

    # Regions of interest (ADR 0053): the left half keeps only what stands in it.
    left_half = "[[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]]"
    as_form = await gateway_client.post(
        IMAGE,
        files={"file": ("bus.jpg", bus, "image/jpeg")},
        data={"regions": left_half, "store": "false"},
        headers=user.headers,
    )
    assert as_form.status_code == 200, as_form.text
    left = as_form.json()
    everything = await _detect_ok(gateway_client, user, bus, store="false")
    width = everything["image"]["width"]
    standing_left = [
        obj for obj in everything["detections"] if obj["bbox"]["x1"] + obj["bbox"]["x2"] <= width
    ]
    assert 0 < len(left["detections"]) == len(standing_left) < len(everything["detections"])
    outside = await gateway_client.post(
        IMAGE,
        files={"file": ("bus.jpg", bus, "image/jpeg")},
        data={"regions": "[[[0, 0], [1.5, 0], [1, 1]]]"},
        headers=user.headers,
    )
    assert "regions[0][1][0]" in api_error(outside, 422, "validation_error")["message"]
    # Too long for a URL in general, so never read from one: refused, not ignored.
    in_url = await _detect(gateway_client, user, bus, regions=left_half)
    assert "not in the URL" in api_error(in_url, 422, "validation_error")["message"]

    # The same parameters as form fields.
    response = await gateway_client.post(
        IMAGE,
        files={"file": ("bus.jpg", bus, "image/jpeg")},
        data={"classes": "BUS, person", "confidence": "0.5", "store": "false"},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    from_form = response.json()
    assert set(_classes(from_form)) == {"person", "bus"}
    assert all(obj["confidence"] >= 0.5 for obj in from_form["detections"])
    assert from_form["detection_id"] is None

    unknown = await _detect(gateway_client, user, bus, classes="unicorn")
    message = api_error_with_request_id(unknown, 422, "invalid_argument")["message"]
    # The error says what was wrong and what to send instead: the classes the model knows.
    assert "unicorn" in message and "person, bicycle, car" in message and "toothbrush" in message

    not_a_number = await _detect(gateway_client, user, bus, confidence="abc")
    body = api_error_with_request_id(not_a_number, 422, "validation_error")
    assert "confidence" in body["message"] and "constrained" not in not_a_number.text
    # store=false kept nothing; the unknown class was refused before anything was stored.
    assert (await _history(gateway_client, user))["total"] == 0


async def test_an_api_key_caller_can_detect(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    created = await gateway_client.post(
        "/api/v1/users/me/api-keys", json={"name": "detector"}, headers=user.headers
    )
    assert created.status_code == 201, created.text
    by_key = dataclasses.replace(user, headers={"X-API-Key": created.json()["secret"]})
    _assert_bus_result(await _detect_ok(gateway_client, by_key, _read("bus.jpg")))
    assert (await _history(gateway_client, by_key))["total"] == 1


async def test_history_is_newest_first_and_filters(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    first = await _detect_ok(gateway_client, user, _read("bus.jpg"))
    second = await _detect_ok(gateway_client, user, _read("zidane.jpg"))
    assert "bus" not in _classes(second)

    listed = await _history(gateway_client, user)
    assert listed["total"] == 2
    assert (listed["limit"], listed["offset"]) == (20, 0)
    assert [item["detection_id"] for item in listed["items"]] == [
        second["detection_id"],
        first["detection_id"],
    ]
    assert (
        listed["items"][1]["detections"]
        == (
            (
                await gateway_client.get(
                    f"/api/v1/detect/{first['detection_id']}", headers=user.headers
                )
            ).json()["detections"]
        )
    )

    page = await _history(gateway_client, user, limit=1, offset=1)
    assert page["total"] == 2
    assert [item["detection_id"] for item in page["items"]] == [first["detection_id"]]

    buses = await _history(gateway_client, user, class_name="bus")
    assert buses["total"] == 1
    assert buses["items"][0]["detection_id"] == first["detection_id"]
    by_id = await _history(gateway_client, user, class_name="0")
    assert by_id["total"] == 2

    newest = listed["items"][0]["created_at"]
    since = await _history(gateway_client, user, since=newest)
    assert [item["detection_id"] for item in since["items"]] == [second["detection_id"]]
    until = await _history(gateway_client, user, until=newest)
    assert [item["detection_id"] for item in until["items"]] == [first["detection_id"]]

    unknown = await gateway_client.get(
        HISTORY, params={"class_name": "unicorn"}, headers=user.headers
    )
    api_error_with_request_id(unknown, 422, "invalid_argument")

    # The file-name search ignores case and combines with the other filters.
    third = await _detect(gateway_client, user, _read("zidane.jpg"), filename="Gate-3_zidane.jpg")
    assert third.status_code == 200, third.text
    named = await _history(gateway_client, user, filename="gate-3")
    assert [item["detection_id"] for item in named["items"]] == [third.json()["detection_id"]]
    assert (await _history(gateway_client, user, filename=".JPG", class_name="tie"))["total"] == 2
    for unfit in ("x" * 256, "a\x00b", "a\u202eb"):
        refused = await gateway_client.get(
            HISTORY, params={"filename": unfit}, headers=user.headers
        )
        api_error_with_request_id(refused, 422, "validation_error")


async def test_the_history_finds_the_images_the_model_was_unsure_of(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    """`confidence_below`: detections with an object scoring below it (of `class_name`'s
    class, when given), through the REST history, its summary and the client library."""
    stored = [
        await _detect_ok(gateway_client, user, _read(name), confidence="0.2")
        for name in ("bus.jpg", "zidane.jpg")
    ]
    lowest = {
        body["detection_id"]: min(obj["confidence"] for obj in body["detections"])
        for body in stored
    }
    # Just above one image's least sure object, below the other's: that image alone.
    unsure, sure = sorted(lowest, key=lambda detection_id: lowest[detection_id])
    assert lowest[sure] - lowest[unsure] > 0.01, lowest
    below = round(lowest[unsure] + 0.005, 3)
    found = await _history(gateway_client, user, confidence_below=below)
    assert [item["detection_id"] for item in found["items"]] == [unsure]
    summary = await gateway_client.get(
        f"{HISTORY}/summary", params={"confidence_below": below}, headers=user.headers
    )
    assert summary.status_code == 200, summary.text
    assert summary.json()["detections"] == 1
    # With a class, one object of that class below the score.
    people = [
        body["detection_id"]
        for body in stored
        if any(obj["class"] == "person" and obj["confidence"] < 0.9 for obj in body["detections"])
    ]
    by_class = await _history(gateway_client, user, confidence_below=0.9, class_name="person")
    assert {item["detection_id"] for item in by_class["items"]} == set(people)
    for unfit in ("0", "-1", "1.5", "nan", "x"):
        refused = await gateway_client.get(
            HISTORY, params={"confidence_below": unfit}, headers=user.headers
        )
        api_error_with_request_id(refused, 422, "validation_error")


async def test_stored_images_keep_their_metadata_or_their_jobs_and_the_history_filters_by_it(
    gateway_client: httpx.AsyncClient, stack: Stack, user: Account, tmp_path: Path
) -> None:
    north = {"camera": "north-gate"}
    by_form = await gateway_client.post(
        IMAGE,
        files={"file": ("bus.jpg", _read("bus.jpg"), "image/jpeg")},
        data={"metadata": json.dumps({**north, "shift": "night"})},
        headers=user.headers,
    )
    assert by_form.status_code == 200, by_form.text
    by_json = await gateway_client.post(
        IMAGE,
        json={
            "image_base64": base64.b64encode(_read("zidane.jpg")).decode(),
            "filename": "zidane.jpg",
            "metadata": {"camera": "south-gate"},
        },
        headers=user.headers,
    )
    assert by_json.status_code == 200, by_json.text
    submitted = await gateway_client.post(
        BATCH,
        files=[("files", ("bus-2.jpg", _read("bus.jpg"), "image/jpeg"))],
        data={"metadata": json.dumps({**north, "order": "A-1042"})},
        headers=user.headers,
    )
    assert submitted.status_code == 202, submitted.text
    job = await _wait_for_job(gateway_client, user, submitted.json()["job_id"])
    from_job = job["items"][0]["detection_id"]
    night = by_form.json()["detection_id"]

    async def ids(*pairs: str, **params: str) -> list[str]:
        listed = await _history(gateway_client, user, metadata=list(pairs), **params)
        return [item["detection_id"] for item in listed["items"]]

    assert await ids("camera:north-gate") == [from_job, night]
    assert await ids("camera:north-gate", "shift:night") == [night]
    assert await ids("order:A-1042", class_name="bus") == [from_job]
    assert await ids("camera:south-gate", class_name="bus") == []
    assert await ids("camera:east-gate") == []
    stored = await gateway_client.get(f"/api/v1/detect/{night}", headers=user.headers)
    assert stored.json()["metadata"] == {"camera": "north-gate", "shift": "night"}
    listed = {
        item["detection_id"]: item["metadata"]
        for item in (await _history(gateway_client, user))["items"]
    }
    assert listed == {
        night: {"camera": "north-gate", "shift": "night"},
        by_json.json()["detection_id"]: {"camera": "south-gate"},
        from_job: {"camera": "north-gate", "order": "A-1042"},
    }
    exported = await gateway_client.get(
        f"{HISTORY}/export",
        params={"format": "csv", "metadata": "camera:north-gate"},
        headers=user.headers,
    )
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["detection_id"] for row in rows} == {from_job, night}

    # Refused with what is wrong, and nothing more stored.
    unkept = await gateway_client.post(
        IMAGE,
        files={"file": ("bus.jpg", _read("bus.jpg"), "image/jpeg")},
        data={"metadata": json.dumps(north), "store": "false"},
        headers=user.headers,
    )
    api_error(unkept, 422, "validation_error")
    assert "store=true" in unkept.text
    for form, named in (('{"camera": ', "is not valid JSON"), ('{"camera id": "1"}', "camera id")):
        refused = await gateway_client.post(
            IMAGE,
            files={"file": ("bus.jpg", _read("bus.jpg"), "image/jpeg")},
            data={"metadata": form},
            headers=user.headers,
        )
        api_error(refused, 422, "validation_error")
        assert named in refused.text, refused.text
    for query in ("metadata=camera", "metadata=a:1&metadata=a:2"):
        api_error_with_request_id(
            await gateway_client.get(f"{HISTORY}?{query}", headers=user.headers),
            422,
            "validation_error",
        )
    assert (await _history(gateway_client, user))["total"] == 3

    # Counted rather than listed: the north gate's two images, bus.jpg's objects twice.
    counted = await gateway_client.get(
        f"{HISTORY}/summary", params={"metadata": "camera:north-gate"}, headers=user.headers
    )
    assert counted.status_code == 200, counted.text
    summary = counted.json()
    assert summary["detections"] == 2 and summary["class_counts"]["bus"] == 2
    assert summary["objects"] == sum(summary["class_counts"].values())
    assert list(summary["class_counts"].values()) == sorted(
        summary["class_counts"].values(), reverse=True
    )

    # The Python client and the command line say the same.
    async with AsyncClient(stack.gateway_url, headers=fresh_network()) as api:
        await api.login(user.email, PASSWORD)
        page = await api.history(metadata={"shift": "night"})
        assert [item.detection_id for item in page.items] == [night]
        assert page.items[0].metadata == {"camera": "north-gate", "shift": "night"}
        by_client = await api.history_summary(metadata={"camera": "north-gate"})
        assert (by_client.detections, by_client.class_counts) == (2, summary["class_counts"])
    created = await gateway_client.post(
        "/api/v1/users/me/api-keys", json={"name": "metadata-cli"}, headers=user.headers
    )
    objectvision = functools.partial(
        CommandLine(stack.gateway_url, tmp_path).run,
        extra_env={"OBJECTVISION_API_KEY": created.json()["secret"]},
    )
    image = tmp_path / "bus.jpg"
    image.write_bytes(_read("bus.jpg"))
    sent = await asyncio.to_thread(
        objectvision, "detect", str(image), "--meta", "camera=west-gate", "--json"
    )
    (detected,) = json.loads(sent.stdout)
    shown = await asyncio.to_thread(objectvision, "history", "--meta", "camera=west-gate")
    assert detected["detection_id"] in shown.stdout
    assert "METADATA" in shown.stdout and "camera=west-gate" in shown.stdout
    counted_by_cli = await asyncio.to_thread(
        objectvision, "history", "--summary", "--meta", "camera=west-gate"
    )
    assert counted_by_cli.stdout.startswith("1 detection, 5 objects: person 4, bus 1")


async def test_a_filtered_deletion_of_the_history_removes_what_the_filters_keep(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    async def detect(name: str, camera: str) -> str:
        sent = await gateway_client.post(
            IMAGE,
            files={"file": (name, _read("bus.jpg"), "image/jpeg")},
            data={"metadata": json.dumps({"camera": camera})},
            headers=user.headers,
        )
        assert sent.status_code == 200, sent.text
        return sent.json()["detection_id"]

    await detect("gate-1.jpg", "test-rig")
    await detect("gate-2.jpg", "test-rig")
    kept = await detect("gate-3.jpg", "north-gate")

    deleted = await gateway_client.delete(
        HISTORY, params={"metadata": "camera:test-rig"}, headers=user.headers
    )
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"deleted": 2, "kept_in_unfinished_jobs": 0, "more": False}
    listed = await _history(gateway_client, user)
    assert [item["detection_id"] for item in listed["items"]] == [kept]

    # No filter: the whole history only when asked for in so many words.
    unfiltered = await gateway_client.delete(HISTORY, headers=user.headers)
    assert "whole history" in api_error(unfiltered, 422, "validation_error")["message"]
    assert (await _history(gateway_client, user))["total"] == 1
    for invalid in ({"all": "perhaps"}, {"metadata": "camera"}, {"since": "yesterday"}):
        refused = await gateway_client.delete(HISTORY, params=invalid, headers=user.headers)
        api_error(refused, 422, "validation_error")
    everything = await gateway_client.delete(HISTORY, params={"all": "true"}, headers=user.headers)
    assert everything.json() == {"deleted": 1, "kept_in_unfinished_jobs": 0, "more": False}
    assert (await _history(gateway_client, user))["total"] == 0
    gone = await gateway_client.get(f"/api/v1/detect/{kept}", headers=user.headers)
    api_error(gone, 404, "not_found")


# Batches


async def test_a_batch_job_runs_to_completion_and_fills_the_history(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    paths = _coco8()
    assert len(paths) == 8, f"coco8 images missing under {IMAGES}"
    files = [("files", (path.name, path.read_bytes(), "image/jpeg")) for path in paths]
    key = {"Idempotency-Key": f"coco8-{uuid.uuid4()}"}
    before = (await _history(gateway_client, user))["total"]

    submitted = await gateway_client.post(BATCH, files=files, headers={**user.headers, **key})
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["total"] == 8
    assert job["status"] in ("pending", "processing", "completed")
    assert submitted.headers["location"] == f"/api/v1/detect/jobs/{job['job_id']}"

    again = await gateway_client.post(BATCH, files=files, headers={**user.headers, **key})
    assert again.status_code == 202, again.text
    assert again.json()["job_id"] == job["job_id"]

    done = await _wait_for_job(gateway_client, user, job["job_id"])
    assert done["status"] == "completed", done
    assert (done["total"], done["processed"], done["failed"]) == (8, 8, 0)
    assert done["completed_at"] is not None
    assert [item["filename"] for item in done["items"]] == [path.name for path in paths]
    for item in done["items"]:
        assert item["status"] == "completed", item
        assert item["error"] is None
        assert uuid.UUID(item["detection_id"])
    assert sum(item["object_count"] for item in done["items"]) > 8

    history = await _history(gateway_client, user, limit=100)
    assert history["total"] == before + 8
    from_job = {item["detection_id"] for item in history["items"] if item["job_id"]}
    assert from_job == {item["detection_id"] for item in done["items"]}
    counts = {item["detection_id"]: item["object_count"] for item in done["items"]}
    for stored in history["items"]:
        assert len(stored["detections"]) == counts[stored["detection_id"]]
        assert stored["job_id"] == job["job_id"]


async def test_a_batch_keeps_its_good_files_and_reports_each_refused_one(
    gateway_client: httpx.AsyncClient, stack: Stack, user: Account
) -> None:
    oversized = b"\xff\xd8\xff" + b"\x00" * _max_upload_bytes(stack)
    files = [
        ("files", ("bus.jpg", _read("bus.jpg"), "image/jpeg")),
        ("files", ("report.pdf", b"%PDF-1.7\n" + b"\x00" * 100, "application/pdf")),
        ("files", ("huge.jpg", oversized, "image/jpeg")),
        ("files", ("zidane.jpg", _read("zidane.jpg"), "image/jpeg")),
    ]
    submitted = await gateway_client.post(BATCH, files=files, headers=user.headers)
    assert submitted.status_code == 202, submitted.text
    done = await _wait_for_job(gateway_client, user, submitted.json()["job_id"])
    assert (done["status"], done["total"], done["processed"], done["failed"]) == (
        "completed",
        4,
        4,
        2,
    )
    items = {item["filename"]: item for item in done["items"]}
    assert [item["filename"] for item in done["items"]] == [
        "bus.jpg",
        "report.pdf",
        "zidane.jpg",
        "huge.jpg",
    ]
    assert items["bus.jpg"]["status"] == items["zidane.jpg"]["status"] == "completed"
    assert "PDF" in items["report.pdf"]["error"]
    assert "MiB" in items["huge.jpg"]["error"] and "at most 20.0 MiB" in items["huge.jpg"]["error"]
    assert (await _history(gateway_client, user))["total"] == 2


# Isolation


async def test_another_users_ids_are_not_found(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    detection = await _detect_ok(gateway_client, user, _read("bus.jpg"))
    submitted = await gateway_client.post(
        BATCH,
        files=[("files", ("bus.jpg", _read("bus.jpg"), "image/jpeg"))],
        headers=user.headers,
    )
    assert submitted.status_code == 202, submitted.text
    other = await _user(gateway_client)
    detection_path = f"/api/v1/detect/{detection['detection_id']}"
    for path in (
        detection_path,
        f"{detection_path}/image",
        f"{detection_path}/image?annotated=false",
        f"/api/v1/detect/jobs/{submitted.json()['job_id']}",
    ):
        api_error_with_request_id(
            await gateway_client.get(path, headers=other.headers), 404, "not_found"
        )
        assert (await gateway_client.get(path, headers=user.headers)).status_code == 200
    assert (await _history(gateway_client, other))["total"] == 0
    await _wait_for_job(gateway_client, user, submitted.json()["job_id"])


# Unfit uploads: refused with their own status, nothing stored, the next request served


def _max_upload_bytes(stack: Stack) -> int:
    return int(stack.env.get("MAX_UPLOAD_BYTES") or 20 * MIB)


def _max_batch_files(stack: Stack) -> int:
    return int(stack.env.get("MAX_BATCH_FILES") or 100)


def _image_file(data: bytes, name: str = "upload.jpg") -> list[Any]:
    return [("file", (name, data, "image/jpeg"))]


def _batch_files(*payloads: bytes) -> list[Any]:
    return [("files", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(payloads)]


UNFIT = [
    pytest.param(
        IMAGE,
        lambda stack: _image_file(b"shopping list: eggs, milk\n" * 20, "notes.jpg"),
        415,
        "unsupported_media_type",
        id="text-named-jpg",
    ),
    pytest.param(IMAGE, lambda stack: _image_file(b""), 422, "invalid_argument", id="zero-bytes"),
    pytest.param(
        IMAGE,
        lambda stack: _image_file(_read("bus.jpg")[:1000]),
        422,
        "invalid_argument",
        id="truncated-jpeg",
    ),
    pytest.param(
        IMAGE,
        lambda stack: _image_file(png_bomb(), "bomb.png"),
        413,
        "payload_too_large",
        id="png-pixel-bomb",
    ),
    pytest.param(
        IMAGE,
        lambda stack: _image_file(b"\xff\xd8\xff" + b"\x00" * (_max_upload_bytes(stack) - 2)),
        413,
        "payload_too_large",
        id="oversized",
    ),
    pytest.param(
        BATCH,
        lambda stack: _batch_files(*[b"\xff\xd8\xff"] * (_max_batch_files(stack) + 1)),
        422,
        "validation_error",
        id="too-many-files",
    ),
    pytest.param(
        BATCH,
        lambda stack: _batch_files(b"%PDF-1.7\n" + b"\x00" * 100, b"name,score\n" * 30),
        415,
        "unsupported_media_type",
        id="a-batch-with-no-usable-file",
    ),
]


@pytest.fixture(scope="module")
async def unfit_uploader(stack: Stack) -> AsyncIterator[Account]:
    """One user for every unfit upload: its history must stay empty throughout."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30.0) as client:
        yield await _user(client)


@pytest.mark.parametrize(("path", "files", "status", "code"), UNFIT)
async def test_unfit_uploads_are_refused_and_leave_nothing_behind(
    gateway_client: httpx.AsyncClient,
    stack: Stack,
    unfit_uploader: Account,
    path: str,
    files: Any,
    status: int,
    code: str,
) -> None:
    response = await gateway_client.post(path, files=files(stack), headers=unfit_uploader.headers)
    error = api_error_with_request_id(response, status, code)
    assert error["message"]
    assert (await _history(gateway_client, unfit_uploader))["total"] == 0
    following = await _detect_ok(gateway_client, unfit_uploader, _read("bus.jpg"), store="false")
    _assert_bus_result(following)


async def test_a_pixel_bomb_is_refused_by_its_header(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    started = time.perf_counter()
    response = await _detect(gateway_client, user, png_bomb(), "bomb.png")
    error = api_error_with_request_id(response, 413, "payload_too_large")
    assert "50000x50000" in error["message"]
    # Refused from the IHDR: 2.5 gigapixels were never decoded.
    assert time.perf_counter() - started < 2.0
