"""Exports end to end: a job's or a filtered history's detections as COCO JSON, a YOLO zip and
CSV, through the gateway and the detection service, against the real stack
(tests/conftest.py).

What each format must say is read back with the tools people use on it (pycocotools for
COCO, the YOLO convention of normalised centre and size, csv) and compared with what the API
itself answers for the same detections; class names are compared with the served model's own
metadata. Every test signs up its own user, so histories hold exactly what the test made.
"""

import asyncio
import csv
import io
import os
import time
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import yaml
from pycocotools.coco import COCO

from detection_service.exports.service import PAGE_SIZE
from detection_service.pipeline.classes import class_names_from_onnx
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import Account, fresh_network, signed_in
from objectvision_devstack.pytest_plugin import served_model_path

BATCH = "/api/v1/detect/batch"
HISTORY_EXPORT = "/api/v1/detect/history/export"
JOB_TIMEOUT_SECONDS = 90.0
# The API and the exports both round pixels to 2 decimals, from the same stored value (the
# API through a float32 on the way), so the two may differ by one unit in the last place.
PIXEL_TOLERANCE = 0.01
SCORE_TOLERANCE = 1e-4
# YOLO values are written with 6 decimals: half a unit of that, times the image side.
YOLO_DECIMALS = 6


def _images_dir() -> Path:
    shared = os.environ.get("OBJECTVISION_SHARED_DIR")
    root = Path(shared) if shared else Path(__file__).resolve().parents[1].parent / "shared"
    return root / "images"


IMAGES = _images_dir()
pytestmark = pytest.mark.skipif(
    not (IMAGES / "bus.jpg").exists(),
    reason=f"sample images not found under {IMAGES} (set OBJECTVISION_SHARED_DIR)",
)


async def _user(client: httpx.AsyncClient) -> Account:
    return await signed_in(client, prefix="export", name="Exporter", network=fresh_network())


@pytest.fixture
async def user(gateway_client: httpx.AsyncClient) -> Account:
    return await _user(gateway_client)


@pytest.fixture(scope="module")
def model_classes() -> tuple[str, ...]:
    """The class names in the served model's own metadata: what the exports must list."""
    return class_names_from_onnx(served_model_path())


def _file(name: str, data: bytes | None = None) -> tuple[str, tuple[str, bytes, str]]:
    return (
        "files",
        (name, data if data is not None else (IMAGES / name).read_bytes(), "image/jpeg"),
    )


async def _submit(
    client: httpx.AsyncClient, user: Account, files: Sequence[tuple[str, Any]]
) -> dict[str, Any]:
    submitted = await client.post(BATCH, files=list(files), headers=user.headers)
    assert submitted.status_code == 202, submitted.text
    return submitted.json()


async def _wait(client: httpx.AsyncClient, user: Account, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while True:
        response = await client.get(f"/api/v1/detect/jobs/{job_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        await asyncio.sleep(0.25)


async def _finished_job(
    client: httpx.AsyncClient, user: Account, files: Sequence[tuple[str, Any]]
) -> dict[str, Any]:
    job = await _wait(client, user, (await _submit(client, user, files))["job_id"])
    assert job["status"] == "completed", job
    return job


async def _stored(
    client: httpx.AsyncClient, user: Account, detection_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """What the API answers for each stored detection, by id: the reference for exports."""
    found = {}
    for detection_id in detection_ids:
        response = await client.get(f"/api/v1/detect/{detection_id}", headers=user.headers)
        assert response.status_code == 200, response.text
        found[detection_id] = response.json()
    return found


async def _export(
    client: httpx.AsyncClient, user: Account, path: str, **params: str
) -> httpx.Response:
    response = await client.get(path, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response


def _job_export(job_id: str) -> str:
    return f"/api/v1/detect/jobs/{job_id}/export"


def _assert_box(actual: Sequence[float], expected: dict[str, float], tolerance: float) -> None:
    """`actual` as x1, y1, x2, y2 against the API's bbox."""
    wanted = (expected["x1"], expected["y1"], expected["x2"], expected["y2"])
    assert actual == pytest.approx(wanted, abs=tolerance), (actual, wanted)


def _csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


# COCO


async def test_a_jobs_coco_export_loads_in_pycocotools_and_matches_its_detections(
    gateway_client: httpx.AsyncClient, user: Account, model_classes: tuple[str, ...], tmp_path: Path
) -> None:
    job = await _finished_job(gateway_client, user, [_file("bus.jpg"), _file("zidane.jpg")])
    ids = [item["detection_id"] for item in job["items"]]
    stored = await _stored(gateway_client, user, ids)

    response = await _export(gateway_client, user, _job_export(job["job_id"]), format="coco")
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="objectvision-job-{job["job_id"]}-coco.json"'
    )
    path = tmp_path / "export.json"
    path.write_bytes(response.content)
    coco = COCO(str(path))

    assert [(c["id"], c["name"]) for c in coco.loadCats(coco.getCatIds())] == list(
        enumerate(model_classes)
    )
    images = coco.loadImgs(coco.getImgIds())
    # Upload order, one COCO image per detected file, keyed back to the API by detection id.
    assert [image["detection_id"] for image in images] == ids
    for image in images:
        detection = stored[image["detection_id"]]
        assert (image["file_name"], image["width"], image["height"]) == (
            detection["filename"],
            detection["image"]["width"],
            detection["image"]["height"],
        )
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        assert len(annotations) == len(detection["detections"]) > 0
        for annotation, expected in zip(annotations, detection["detections"], strict=True):
            x, y, width, height = annotation["bbox"]
            _assert_box((x, y, x + width, y + height), expected["bbox"], PIXEL_TOLERANCE)
            assert annotation["category_id"] == expected["class_id"]
            assert coco.cats[annotation["category_id"]]["name"] == expected["class"]
            assert annotation["score"] == pytest.approx(expected["confidence"], abs=SCORE_TOLERANCE)
            assert annotation["area"] == pytest.approx(width * height, rel=1e-3)
            assert annotation["iscrowd"] == 0


# YOLO


async def test_a_jobs_yolo_export_round_trips_to_the_same_pixel_boxes(
    gateway_client: httpx.AsyncClient, user: Account, model_classes: tuple[str, ...]
) -> None:
    # Two files named bus.jpg: their label files must not overwrite each other.
    job = await _finished_job(
        gateway_client, user, [_file("bus.jpg"), _file("zidane.jpg"), _file("bus.jpg")]
    )
    stored = await _stored(gateway_client, user, [item["detection_id"] for item in job["items"]])

    response = await _export(gateway_client, user, _job_export(job["job_id"]), format="yolo")
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].endswith(f'-{job["job_id"]}-yolo.zip"')
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None

    data = yaml.safe_load(archive.read("data.yaml"))
    assert data["nc"] == len(model_classes)
    assert [data["names"][i] for i in range(data["nc"])] == list(model_classes)
    assert archive.read("classes.txt").decode().splitlines() == list(model_classes)

    index = _csv_rows(archive.read("images.csv"))
    assert [row["detection_id"] for row in index] == [item["detection_id"] for item in job["items"]]
    assert len({row["label_file"] for row in index}) == 3
    assert index[0]["label_file"] == "labels/bus.txt"
    for row in index:
        detection = stored[row["detection_id"]]
        width, height = int(row["width"]), int(row["height"])
        assert (width, height) == (detection["image"]["width"], detection["image"]["height"])
        assert row["filename"] == detection["filename"]
        lines = archive.read(row["label_file"]).decode().splitlines()
        assert len(lines) == len(detection["detections"]) > 0
        tolerance = PIXEL_TOLERANCE + 10**-YOLO_DECIMALS * max(width, height)
        for line, expected in zip(lines, detection["detections"], strict=True):
            class_id, cx, cy, w, h = line.split()
            assert int(class_id) == expected["class_id"]
            assert all(0 <= float(v) <= 1 for v in (cx, cy, w, h)), line
            assert all(len(v.split(".")[1]) == YOLO_DECIMALS for v in (cx, cy, w, h)), line
            x_center, y_center = float(cx) * width, float(cy) * height
            box_width, box_height = float(w) * width, float(h) * height
            back = (
                x_center - box_width / 2,
                y_center - box_height / 2,
                x_center + box_width / 2,
                y_center + box_height / 2,
            )
            _assert_box(back, expected["bbox"], tolerance)


# CSV


async def test_a_jobs_csv_export_has_a_header_and_one_row_per_object(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    job = await _finished_job(gateway_client, user, [_file("bus.jpg"), _file("zidane.jpg")])
    stored = await _stored(gateway_client, user, [item["detection_id"] for item in job["items"]])

    response = await _export(gateway_client, user, _job_export(job["job_id"]), format="csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].endswith(f'-{job["job_id"]}-csv.csv"')
    header = response.content.decode().splitlines()[0]
    assert header == (
        "detection_id,job_id,filename,image_width,image_height,created_at,class_id,"
        "class_name,confidence,x1,y1,x2,y2,width,height,metadata"
    )
    rows = _csv_rows(response.content)
    expected_rows = [
        (detection_id, obj)
        for detection_id, detection in stored.items()
        for obj in detection["detections"]
    ]
    assert len(rows) == len(expected_rows) == sum(i["object_count"] for i in job["items"])
    for row, (detection_id, obj) in zip(rows, expected_rows, strict=True):
        detection = stored[detection_id]
        assert row["detection_id"] == detection_id
        assert row["job_id"] == job["job_id"]
        assert row["filename"] == detection["filename"]
        assert (int(row["image_width"]), int(row["image_height"])) == (
            detection["image"]["width"],
            detection["image"]["height"],
        )
        assert (int(row["class_id"]), row["class_name"]) == (obj["class_id"], obj["class"])
        assert float(row["confidence"]) == pytest.approx(obj["confidence"], abs=SCORE_TOLERANCE)
        box = [float(row[key]) for key in ("x1", "y1", "x2", "y2")]
        _assert_box(box, obj["bbox"], PIXEL_TOLERANCE)
        assert float(row["width"]) == pytest.approx(box[2] - box[0], abs=PIXEL_TOLERANCE)


# History


async def _detect(client: httpx.AsyncClient, user: Account, name: str, data: bytes) -> str:
    response = await client.post(
        "/api/v1/detect/image", files={"file": (name, data, "image/jpeg")}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["detection_id"]


async def test_a_history_export_takes_the_history_filters(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    bus = await _detect(gateway_client, user, "bus.jpg", (IMAGES / "bus.jpg").read_bytes())
    zidane = await _detect(gateway_client, user, "zidane.jpg", (IMAGES / "zidane.jpg").read_bytes())

    everything = _csv_rows(
        (await _export(gateway_client, user, HISTORY_EXPORT, format="csv")).content
    )
    # Newest first, as the history.
    assert list(dict.fromkeys(row["detection_id"] for row in everything)) == [zidane, bus]
    assert all(row["job_id"] == "" for row in everything)

    with_a_bus = await _export(gateway_client, user, HISTORY_EXPORT, format="csv", class_name="bus")
    assert {row["detection_id"] for row in _csv_rows(with_a_bus.content)} == {bus}
    assert 'filename="objectvision-history-' in with_a_bus.headers["content-disposition"]

    later = await _export(
        gateway_client, user, HISTORY_EXPORT, format="coco", since="2999-01-01T00:00:00Z"
    )
    empty = later.json()
    assert (empty["images"], empty["annotations"]) == ([], [])
    assert len(empty["categories"]) > 0


async def test_a_history_export_pages_through_more_than_one_page_without_repeats(
    gateway_client: httpx.AsyncClient, user: Account, tmp_path: Path
) -> None:
    count = PAGE_SIZE + 3
    data = (IMAGES / "bus.jpg").read_bytes()
    limit = asyncio.Semaphore(4)

    async def detect(position: int) -> str:
        async with limit:
            return await _detect(gateway_client, user, f"bus-{position}.jpg", data)

    made = set(await asyncio.gather(*(detect(i) for i in range(count))))

    response = await _export(gateway_client, user, HISTORY_EXPORT, format="coco")
    path = tmp_path / "history.json"
    path.write_bytes(response.content)
    coco = COCO(str(path))
    images = coco.loadImgs(coco.getImgIds())
    assert len(images) == count
    assert {image["detection_id"] for image in images} == made
    annotations = coco.loadAnns(coco.getAnnIds())
    assert len({a["id"] for a in annotations}) == len(annotations)
    # Every image's annotations follow it across the page boundary: bus.jpg's five objects.
    assert all(len(coco.getAnnIds(imgIds=[image["id"]])) == 5 for image in images)


# Errors


async def test_another_users_or_an_unknown_job_is_not_found(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    job = await _finished_job(gateway_client, user, [_file("bus.jpg")])
    stranger = await _user(gateway_client)

    theirs = await gateway_client.get(
        _job_export(job["job_id"]), params={"format": "coco"}, headers=stranger.headers
    )
    api_error(theirs, 404, "not_found")
    unknown = await gateway_client.get(
        _job_export(str(uuid.uuid4())), params={"format": "csv"}, headers=user.headers
    )
    api_error(unknown, 404, "not_found")
    anonymous = await gateway_client.get(_job_export(job["job_id"]), params={"format": "csv"})
    api_error(anonymous, 401, "unauthenticated")


async def test_an_unsupported_format_is_refused_with_the_formats_listed(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    for path in (_job_export(str(uuid.uuid4())), HISTORY_EXPORT):
        for params in ({"format": "xml"}, {}):
            response = await gateway_client.get(path, params=params, headers=user.headers)
            message = api_error(response, 422, "validation_error")["message"]
            assert "format" in message
            if params:
                assert all(name in message for name in ("'coco'", "'yolo'", "'csv'")), message
    unknown_class = await gateway_client.get(
        HISTORY_EXPORT, params={"format": "csv", "class_name": "unicorn"}, headers=user.headers
    )
    assert "unicorn" in api_error(unknown_class, 422, "invalid_argument")["message"]


def _variants(count: int) -> list[bytes]:
    """Distinct JPEGs (one pixel differs), so no result cache can answer them at once."""
    image = cv2.imread(str(IMAGES / "bus.jpg"))
    variants = []
    for i in range(count):
        copy = image.copy()
        copy[0, 0] = np.array([i % 256, (i * 7) % 256, 255 - i % 256], dtype=np.uint8)
        ok, encoded = cv2.imencode(".jpg", copy, [cv2.IMWRITE_JPEG_QUALITY, 90 - i % 10])
        assert ok
        variants.append(encoded.tobytes())
    return variants


async def test_a_running_job_is_a_conflict_until_it_has_finished(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    files = [_file(f"frame-{i}.jpg", data) for i, data in enumerate(_variants(16))]
    job = await _submit(gateway_client, user, files)

    running = await gateway_client.get(
        _job_export(job["job_id"]), params={"format": "coco"}, headers=user.headers
    )
    message = api_error(running, 409, "failed_precondition")["message"]
    assert "still" in message and "once it has finished" in message, message

    done = await _wait(gateway_client, user, job["job_id"])
    assert done["status"] == "completed", done
    finished = await _export(gateway_client, user, _job_export(job["job_id"]), format="coco")
    assert len(finished.json()["images"]) == 16
