"""Deleting what a user uploaded, end to end: gateway -> detection-service -> PostgreSQL and its
storage, on the session stack (tests/conftest.py), whose job workers run.

A stored detection, and a finished job with everything it stored, leave every route that
showed them: the detection and its image, the history and its export, the job, its frames,
its annotated video and its export. A job still queued is refused until it is cancelled
(tests/test_jobs_api.py, whose stack has no workers, so the job is known to be queued).
"""

import asyncio
import csv
import io
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from objectvision_devstack.answers import api_error_with_request_id
from objectvision_devstack.api_users import Account, signed_in
from objectvision_devstack.videos import make_video

IMAGES = (
    Path(os.environ.get("OBJECTVISION_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    / "images"
)
BUS = IMAGES / "bus.jpg"
ZIDANE = IMAGES / "zidane.jpg"
DETECT = "/api/v1/detect"
JOBS = f"{DETECT}/jobs"
HISTORY = f"{DETECT}/history"

pytestmark = pytest.mark.skipif(not BUS.exists(), reason=f"sample images not found under {IMAGES}")


async def _account(client: httpx.AsyncClient) -> Account:
    return await signed_in(client, prefix="delete", name="Deleter")


async def _detect(client: httpx.AsyncClient, account: Account, path: Path) -> str:
    data = await asyncio.to_thread(path.read_bytes)
    response = await client.post(
        f"{DETECT}/image",
        files={"file": (path.name, data, "image/jpeg")},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["detection_id"])


async def _finished(client: httpx.AsyncClient, account: Account, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job = (await client.get(f"{JOBS}/{job_id}", headers=account.headers)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


async def _history_csv(client: httpx.AsyncClient, account: Account) -> list[dict[str, str]]:
    response = await client.get(
        f"{HISTORY}/export", params={"format": "csv"}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_a_deleted_detection_is_gone_from_every_route_and_only_its_owner_can_delete_it(
    gateway_client: httpx.AsyncClient,
) -> None:
    owner = await _account(gateway_client)
    deleted = await _detect(gateway_client, owner, BUS)
    kept = await _detect(gateway_client, owner, ZIDANE)
    stranger = await _account(gateway_client)
    api_error_with_request_id(
        await gateway_client.delete(f"{DETECT}/{kept}", headers=stranger.headers),
        404,
        "not_found",
    )

    response = await gateway_client.delete(f"{DETECT}/{deleted}", headers=owner.headers)
    assert response.status_code == 204, response.text
    assert response.content == b""

    for path in (f"{DETECT}/{deleted}", f"{DETECT}/{deleted}/image"):
        api_error_with_request_id(
            await gateway_client.get(path, headers=owner.headers), 404, "not_found"
        )
    original = await gateway_client.get(
        f"{DETECT}/{deleted}/image", params={"annotated": "false"}, headers=owner.headers
    )
    api_error_with_request_id(original, 404, "not_found")
    history = (await gateway_client.get(HISTORY, headers=owner.headers)).json()
    assert [item["detection_id"] for item in history["items"]] == [kept]
    assert history["total"] == 1
    assert {row["detection_id"] for row in await _history_csv(gateway_client, owner)} == {kept}
    again = await gateway_client.delete(f"{DETECT}/{deleted}", headers=owner.headers)
    api_error_with_request_id(again, 404, "not_found")
    # What the stranger could not delete is still there.
    still = await gateway_client.get(f"{DETECT}/{kept}/image", headers=owner.headers)
    assert still.status_code == 200 and still.content[:3] == b"\xff\xd8\xff"


async def test_a_finished_batch_job_goes_with_its_images_and_results(
    gateway_client: httpx.AsyncClient,
) -> None:
    owner = await _account(gateway_client)
    images = [(path.name, await asyncio.to_thread(path.read_bytes)) for path in (BUS, ZIDANE)]
    submitted = await gateway_client.post(
        f"{DETECT}/batch",
        files=[("files", (name, data, "image/jpeg")) for name, data in images],
        headers=owner.headers,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    job = await _finished(gateway_client, owner, job_id)
    assert job["status"] == "completed"
    detection_ids = [item["detection_id"] for item in job["items"]]

    response = await gateway_client.delete(f"{JOBS}/{job_id}", headers=owner.headers)
    assert response.status_code == 204, response.text

    gone = [f"{JOBS}/{job_id}", *(f"{DETECT}/{d}/image" for d in detection_ids)]
    for path in gone:
        api_error_with_request_id(
            await gateway_client.get(path, headers=owner.headers), 404, "not_found"
        )
    export = await gateway_client.get(
        f"{JOBS}/{job_id}/export", params={"format": "coco"}, headers=owner.headers
    )
    api_error_with_request_id(export, 404, "not_found")
    assert (await gateway_client.get(HISTORY, headers=owner.headers)).json()["total"] == 0
    assert (await gateway_client.get(JOBS, headers=owner.headers)).json()["total"] == 0
    assert await _history_csv(gateway_client, owner) == []
    again = await gateway_client.delete(f"{JOBS}/{job_id}", headers=owner.headers)
    api_error_with_request_id(again, 404, "not_found")


async def test_a_finished_video_job_goes_with_its_frames_and_annotated_video(
    gateway_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    owner = await _account(gateway_client)
    clip = await asyncio.to_thread(
        make_video, tmp_path / "bus.mp4", [(BUS, 10)], fps=5, width=320, height=240
    )
    submitted = await gateway_client.post(
        f"{DETECT}/video",
        files={"file": ("bus.mp4", await asyncio.to_thread(clip.read_bytes), "video/mp4")},
        data={"every": "5"},
        headers=owner.headers,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    assert (await _finished(gateway_client, owner, job_id))["status"] == "completed"
    annotated = await gateway_client.get(f"{JOBS}/{job_id}/annotated", headers=owner.headers)
    assert annotated.status_code == 200

    response = await gateway_client.delete(f"{JOBS}/{job_id}", headers=owner.headers)
    assert response.status_code == 204, response.text

    for path in (f"{JOBS}/{job_id}", f"{JOBS}/{job_id}/frames", f"{JOBS}/{job_id}/annotated"):
        api_error_with_request_id(
            await gateway_client.get(path, headers=owner.headers), 404, "not_found"
        )
