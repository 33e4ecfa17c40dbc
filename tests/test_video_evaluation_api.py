"""Scoring a video job against per-frame labels, end to end (ADR 0056): through the gateway
and the detection service, against the real stack (tests/conftest.py).

The video pans bus.jpg 6 pixels a frame, tracked at every frame. The ground truth is built
from the job's own answer, so what the scores must be is known exactly: its tracked objects
as MOTChallenge rows score a perfect tracking; the same rows with two people's identities
exchanged halfway score the two switches and the IDF1 that MOTChallenge's definitions give.
Frame 0 (no track is confirmed yet) is left unlabelled: outside the labels' frames, not
scored. Each test signs up its own user.
"""

import io
import zipfile
from collections import Counter
from typing import Any

import httpx
import pytest

from objectvision_devstack.api_users import Account, signed_in
from objectvision_devstack.ground_truth import cvat_mot_zip, own_identities, tracked_objects
from objectvision_devstack.triton import REPOSITORY_ROOT
from objectvision_devstack.videos import panned, write_video

from .conftest import finished_video_job

BUS = REPOSITORY_ROOT.parent / "shared" / "images" / "bus.jpg"
FRAMES = 8
# From this frame on, the swapped labels give two people each other's identity.
SWAP_FROM = 4


@pytest.fixture(scope="module")
def panned_bus(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("video-evaluation") / "panned-bus.mp4"
    return write_video(path, panned(BUS, FRAMES, step=6), fps=10).read_bytes()


def _evaluation(job_id: str) -> str:
    return f"/api/v1/detect/jobs/{job_id}/evaluation"


async def _scored(
    client: httpx.AsyncClient, account: Account, job_id: str, labels: bytes, name: str
) -> dict[str, Any]:
    response = await client.post(
        _evaluation(job_id), headers=account.headers, files={"labels": (name, labels)}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_tracked_video_is_scored_on_its_frames_and_on_how_it_kept_identities(
    gateway_client: httpx.AsyncClient, panned_bus: bytes
) -> None:
    account = await signed_in(gateway_client, prefix="video-evaluation", name="Tracker")
    job, frames = await finished_video_job(
        gateway_client, account, panned_bus, frames=FRAMES, track=True
    )
    objects = tracked_objects(frames)
    own = own_identities(objects)

    exact = await _scored(gateway_client, account, job["job_id"], cvat_mot_zip(objects), "mot.zip")
    assert (exact["job_kind"], exact["labels_format"]) == ("video", "mot")
    assert (exact["images"], exact["frames_outside_labels"]) == (FRAMES - 1, 1)
    assert exact["ground_truth"] == len(objects)
    tracking = exact["tracking"]
    assert (tracking["mota"], tracking["idf1"], tracking["id_switches"]) == (1.0, 1.0, 0)
    assert tracking["ground_truth_tracks"] == len(set(own.values()))
    # The boxes as the API rounds them: IoU 1 to within that rounding.
    assert tracking["motp"] == pytest.approx(1.0, abs=1e-3)
    person = next(row for row in exact["classes"] if row["class_name"] == "person")
    assert person["tracking"]["mota"] == 1.0

    # Two people seen in every labelled frame exchange identities from SWAP_FROM on.
    people = Counter(found["track_id"] for _, found in objects if found["class"] == "person")
    steady = [track for track, seen in people.items() if seen == FRAMES - 1]
    assert len(steady) >= 2, f"fewer than two people were tracked in every frame: {people}"
    first, second = steady[:2]
    swapped = dict(own)
    for frame in range(SWAP_FROM, FRAMES):
        swapped[frame, first], swapped[frame, second] = own[frame, second], own[frame, first]
    switched = await _scored(
        gateway_client, account, job["job_id"], cvat_mot_zip(objects, swapped), "swapped.zip"
    )
    labelled = len(objects)
    # Each of the two is matched to the other's track for the frames SWAP_FROM..7: 2 switches.
    # The best whole-track assignment keeps the longer part of each (4 of 7 frames): 3 frames
    # of each person disagree on both sides.
    assert switched["tracking"]["id_switches"] == 2
    assert switched["tracking"]["mota"] == pytest.approx(1 - 2 / labelled)
    assert switched["tracking"]["idf1"] == pytest.approx((labelled - 6) / labelled)
    assert switched["map50_95"] == exact["map50_95"], "the boxes did not change"


async def test_yolo_labels_named_by_frame_score_a_video_without_tracking(
    gateway_client: httpx.AsyncClient, panned_bus: bytes
) -> None:
    account = await signed_in(gateway_client, prefix="video-evaluation", name="Framer")
    job, frames = await finished_video_job(gateway_client, account, panned_bus, frames=FRAMES)
    width, height = job["video"]["width"], job["video"]["height"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for frame in frames:
            lines = []
            for found in frame["detections"]:
                box = found["bbox"]
                lines.append(
                    f"{found['class_id']} {(box['x1'] + box['x2']) / 2 / width}"
                    f" {(box['y1'] + box['y2']) / 2 / height} {box['width'] / width}"
                    f" {box['height'] / height}"
                )
            archive.writestr(
                f"obj_train_data/frame_{frame['frame_index']:06d}.txt", "\n".join(lines)
            )
    scored = await _scored(gateway_client, account, job["job_id"], buffer.getvalue(), "yolo.zip")
    assert (scored["labels_format"], scored["images"], scored["frames_outside_labels"]) == (
        "yolo",
        FRAMES,
        0,
    )
    assert scored["tracking"] is None
    assert scored["map50"] == pytest.approx(1.0)

    refused = await gateway_client.post(
        _evaluation(job["job_id"]),
        headers=account.headers,
        files={"labels": ("gt.txt", b"12,1,10,10,20,40\n")},
    )
    assert refused.status_code == 422, refused.text
    assert "the labels cover frames 11 to 11 (counted from 0)" in refused.json()["error"]["message"]
