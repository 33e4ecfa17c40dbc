"""Scoring a finished batch job against ground-truth labels, end to end (ADR 0054): through
the gateway and the detection service, against the real stack (tests/conftest.py).

The reference is pycocotools' COCOeval, run here on the job's own COCO export and on COCO
ground truth built from the same label files: the API must report what it reports. Every
test signs up its own user and makes its own jobs.
"""

import asyncio
import contextlib
import io
import json
import os
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from objectvision_common.limits import MAX_LABELS_BYTES
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import Account, fresh_network, signed_in

BATCH = "/api/v1/detect/batch"
JOB_TIMEOUT_SECONDS = 90.0


def _images_dir() -> Path:
    shared = os.environ.get("OBJECTVISION_SHARED_DIR")
    root = Path(shared) if shared else Path(__file__).resolve().parents[1].parent / "shared"
    return root / "images"


COCO8 = _images_dir() / "coco8"
VAL_IMAGES = sorted((COCO8 / "images" / "val").glob("*.jpg"))
VAL_LABELS = sorted((COCO8 / "labels" / "val").glob("*.txt"))
pytestmark = pytest.mark.skipif(
    not VAL_IMAGES, reason=f"coco8 not found under {COCO8} (set OBJECTVISION_SHARED_DIR)"
)


@pytest.fixture
async def user(gateway_client: httpx.AsyncClient) -> Account:
    return await signed_in(
        gateway_client, prefix="evaluate", name="Evaluator", network=fresh_network()
    )


def _evaluation(job_id: str) -> str:
    return f"/api/v1/detect/jobs/{job_id}/evaluation"


async def _finished_job(
    client: httpx.AsyncClient, user: Account, images: Sequence[Path], **params: str
) -> dict[str, Any]:
    files = [("files", (path.name, path.read_bytes(), "image/jpeg")) for path in images]
    submitted = await client.post(BATCH, files=files, params=params, headers=user.headers)
    assert submitted.status_code == 202, submitted.text
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while True:
        response = await client.get(
            f"/api/v1/detect/jobs/{submitted.json()['job_id']}", headers=user.headers
        )
        job = response.json()
        if job["status"] not in ("pending", "processing"):
            assert job["status"] == "completed", job
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.25)


async def _evaluate(
    client: httpx.AsyncClient, user: Account, job_id: str, name: str, labels: bytes
) -> httpx.Response:
    return await client.post(
        _evaluation(job_id), files={"labels": (name, labels)}, headers=user.headers
    )


async def _export(client: httpx.AsyncClient, user: Account, job_id: str, format: str) -> bytes:
    response = await client.get(
        f"/api/v1/detect/jobs/{job_id}/export", params={"format": format}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return response.content


def _labels_zip(paths: Sequence[Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in paths:
            archive.write(path, f"labels/val/{path.name}")
    return buffer.getvalue()


def _cocoeval_stats(truth_path: Path, results: list[dict[str, Any]]) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(truth_path))
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return [float(value) for value in evaluation.stats[:6]]


def _coco_truth(export: dict[str, Any], label_paths: Sequence[Path]) -> dict[str, Any]:
    """COCO ground truth from YOLO label files, placed on the export's images (their ids and
    sizes), so pycocotools scores the export's detections against the very same boxes."""
    by_stem = {Path(image["file_name"]).stem: image for image in export["images"]}
    annotations = []
    for path in label_paths:
        image = by_stem[path.stem]
        for line in path.read_text().splitlines():
            class_id, x, y, w, h = (float(value) for value in line.split())
            width, height = w * image["width"], h * image["height"]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image["id"],
                    "category_id": int(class_id),
                    "bbox": [
                        x * image["width"] - width / 2,
                        y * image["height"] - height / 2,
                        width,
                        height,
                    ],
                    "area": width * height,
                    "iscrowd": 0,
                }
            )
    return {
        "images": export["images"],
        "annotations": annotations,
        "categories": export["categories"],
    }


async def test_a_job_scored_against_coco8_labels_reports_what_pycocotools_does(
    gateway_client: httpx.AsyncClient, user: Account, tmp_path: Path
) -> None:
    job = await _finished_job(gateway_client, user, VAL_IMAGES)
    response = await _evaluate(
        gateway_client, user, job["job_id"], "coco8-val.zip", _labels_zip(VAL_LABELS)
    )
    assert response.status_code == 200, response.text
    scored = response.json()

    export = json.loads(await _export(gateway_client, user, job["job_id"], "coco"))
    truth_path = tmp_path / "truth.json"
    truth_path.write_text(json.dumps(_coco_truth(export, VAL_LABELS)))
    results = [
        {key: annotation[key] for key in ("image_id", "category_id", "bbox", "score")}
        for annotation in export["annotations"]
    ]
    map50_95, map50, map75, *by_size = _cocoeval_stats(truth_path, results)

    labelled = sum(len(path.read_text().splitlines()) for path in VAL_LABELS)
    assert (scored["labels_format"], scored["images"], scored["ground_truth"]) == (
        "yolo",
        len(VAL_IMAGES),
        labelled,
    )
    assert scored["detections"] == len(export["annotations"])
    assert (scored["images_without_labels"], scored["unmatched_label_count"]) == (0, 0)
    assert scored["unknown_classes"] == []
    assert 0.2 < scored["map50_95"] < scored["map50"] <= 1  # YOLOv8n finds much, not all
    # Exports round boxes to 2 decimals and scores to 4: a hair's difference in IoU.
    assert scored["map50_95"] == pytest.approx(map50_95, abs=2e-3)
    assert scored["map50"] == pytest.approx(map50, abs=2e-3)
    assert scored["map75"] == pytest.approx(map75, abs=2e-3)
    # By size, as COCOeval (-1 where nothing of a size is labelled: null here).
    assert [row["size"] for row in scored["sizes"]] == ["small", "medium", "large"]
    assert sum(row["ground_truth"] for row in scored["sizes"]) == labelled
    for row, expected in zip(scored["sizes"], by_size, strict=True):
        if expected == -1:
            assert (row["ground_truth"], row["map50_95"]) == (0, None), row
        else:
            assert row["map50_95"] == pytest.approx(expected, abs=2e-3), row
    assert sum(row["ground_truth"] for row in scored["classes"]) == labelled
    assert sum(row["detections"] for row in scored["classes"]) == scored["detections"]
    # Each labelled object is in one cell of its row, each detection in one of its column.
    for row in scored["classes"]:
        name = row["class_name"]
        confusions = scored["confusions"]
        assert sum(c["count"] for c in confusions if c["actual"] == name) == row["ground_truth"]
        assert sum(c["count"] for c in confusions if c["predicted"] == name) == row["detections"]


async def test_a_job_detected_with_the_suggested_thresholds_scores_the_f1_promised(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    labels = _labels_zip(VAL_LABELS)
    first = await _finished_job(gateway_client, user, VAL_IMAGES)
    response = await _evaluate(gateway_client, user, first["job_id"], "l.zip", labels)
    assert response.status_code == 200, response.text
    promised = response.json()
    suggested = promised["suggested_class_confidence"]
    rows = {row["class_name"]: row for row in promised["classes"]}
    assert suggested and set(suggested) == {
        name for name, row in rows.items() if row["f1"] is not None
    }
    for name, threshold in suggested.items():
        assert threshold <= rows[name]["f1_confidence"] < threshold + 1e-4
        assert threshold >= promised["min_confidence"]

    pairs = ",".join(f"{name}:{threshold}" for name, threshold in suggested.items())
    second = await _finished_job(gateway_client, user, VAL_IMAGES, class_confidence=pairs)
    response = await _evaluate(gateway_client, user, second["job_id"], "l.zip", labels)
    assert response.status_code == 200, response.text
    kept = {row["class_name"]: row for row in response.json()["classes"]}
    for name in suggested:
        precision, recall = kept[name]["precision"], kept[name]["recall"]
        # Every detection the second job kept of the class is one the best F1 was reached with.
        f1 = 2 * precision * recall / (precision + recall)
        assert f1 >= rows[name]["f1"] - 1e-6, (name, kept[name], rows[name])


async def test_a_point_of_the_curve_is_what_detecting_at_its_threshold_scores(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    labels = _labels_zip(VAL_LABELS)
    first = await _finished_job(gateway_client, user, VAL_IMAGES, confidence="0.1")
    response = await _evaluate(gateway_client, user, first["job_id"], "l.zip", labels)
    assert response.status_code == 200, response.text
    scored = response.json()
    curve = scored["curve"]
    # The first point keeps everything the job kept; recall only falls as the threshold rises.
    assert curve[0]["confidence"] == pytest.approx(0.1)
    assert (curve[0]["precision"], curve[0]["recall"]) == pytest.approx(
        (scored["precision"], scored["recall"])
    )
    assert [p["recall"] for p in curve] == sorted((p["recall"] for p in curve), reverse=True)
    assert max(p["f1"] for p in curve) == pytest.approx(scored["f1"])
    for row in scored["classes"]:
        has_curve = bool(row["ground_truth"] and row["detections"])
        assert bool(row["curve"]) == has_curve, row

    point = curve[len(curve) // 2]
    assert point["confidence"] > 0.1
    second = await _finished_job(
        gateway_client, user, VAL_IMAGES, confidence=str(point["confidence"])
    )
    response = await _evaluate(gateway_client, user, second["job_id"], "l.zip", labels)
    assert response.status_code == 200, response.text
    again = response.json()
    assert (again["precision"], again["recall"]) == pytest.approx(
        (point["precision"], point["recall"])
    )


async def test_a_job_scored_against_its_own_exports_is_perfect(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    job = await _finished_job(gateway_client, user, VAL_IMAGES[:2])
    for format, name in (("yolo", "export.zip"), ("coco", "export.json")):
        labels = await _export(gateway_client, user, job["job_id"], format)
        response = await _evaluate(gateway_client, user, job["job_id"], name, labels)
        assert response.status_code == 200, response.text
        scored = response.json()
        assert scored["labels_format"] == format
        assert scored["ground_truth"] == scored["detections"] > 0
        assert (scored["map50_95"], scored["precision"], scored["recall"]) == pytest.approx(
            (1.0, 1.0, 1.0)
        )
        assert all(cell["actual"] == cell["predicted"] for cell in scored["confusions"])


async def test_labels_of_classes_the_job_did_not_ask_for_are_left_out(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    job = await _finished_job(gateway_client, user, VAL_IMAGES, classes="person")
    response = await _evaluate(
        gateway_client, user, job["job_id"], "l.zip", _labels_zip(VAL_LABELS)
    )
    assert response.status_code == 200, response.text
    people = sum(
        1 for path in VAL_LABELS for line in path.read_text().splitlines() if line.split()[0] == "0"
    )
    scored = response.json()
    assert scored["ground_truth"] == people > 0
    assert [row["class_name"] for row in scored["classes"]] == ["person"]


async def test_images_without_labels_and_labels_without_images_are_reported(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    job = await _finished_job(gateway_client, user, VAL_IMAGES[:2])
    labels = _labels_zip([VAL_LABELS[0]])
    with zipfile.ZipFile(buffer := io.BytesIO(labels), "a") as archive:
        archive.writestr("labels/val/not-uploaded.txt", "0 0.5 0.5 0.1 0.1\n")
    response = await _evaluate(gateway_client, user, job["job_id"], "l.zip", buffer.getvalue())
    assert response.status_code == 200, response.text
    scored = response.json()
    assert (scored["images"], scored["images_without_labels"]) == (2, 1)
    assert scored["unmatched_labels"] == ["labels/val/not-uploaded.txt"]
    assert scored["unmatched_label_count"] == 1


async def test_labels_that_cannot_be_scored_are_refused_with_what_to_fix(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    job = await _finished_job(gateway_client, user, VAL_IMAGES[:1])
    job_id = job["job_id"]

    garbage = await _evaluate(gateway_client, user, job_id, "l.zip", b"GIF89a....")
    assert "neither a zip of YOLO label files nor a COCO JSON" in api_error(garbage, 422)["message"]
    bad_line = _labels_zip([])
    with zipfile.ZipFile(buffer := io.BytesIO(bad_line), "a") as archive:
        archive.writestr(f"{VAL_IMAGES[0].stem}.txt", "0 0.5 0.5 0.1\n")
    refused = await _evaluate(gateway_client, user, job_id, "l.zip", buffer.getvalue())
    assert f"line 1 of {VAL_IMAGES[0].stem}.txt" in api_error(refused, 422)["message"]
    elsewhere = await _evaluate(gateway_client, user, job_id, "l.zip", _labels_zip(VAL_LABELS[1:]))
    assert "no label entry names an image of job" in api_error(elsewhere, 422)["message"]
    too_large = await _evaluate(
        gateway_client, user, job_id, "l.json", b" " * (MAX_LABELS_BYTES + 1)
    )
    assert "at most" in api_error(too_large, 413, "payload_too_large")["message"]


async def test_another_accounts_job_cannot_be_scored(
    gateway_client: httpx.AsyncClient, user: Account
) -> None:
    job = await _finished_job(gateway_client, user, VAL_IMAGES[:1])
    other = await signed_in(
        gateway_client, prefix="evaluate", name="Other", network=fresh_network()
    )
    response = await _evaluate(
        gateway_client, other, job["job_id"], "l.zip", _labels_zip(VAL_LABELS)
    )
    api_error(response, 404, "not_found")
