"""Object tracking in video jobs end to end through the gateway (ADR 0038), every part real.

A video job submitted with `track=true` follows its objects from frame to frame: the job's
video says `tracked: true`, and each object of `/jobs/{id}/frames` carries the `track_id` of
its track once the track is confirmed (from the second frame it is seen in), the same id while
the object stays. Without `track` every `track_id` is null. The video pans bus.jpg a few
pixels a frame (objectvision_devstack.videos.panned), so the bus moves as in a camera's pan;
it is sampled at every frame, as tracking wants. Each test signs up its own user.
"""

import re
import uuid
from pathlib import Path

import httpx
import pytest

from objectvision_client import Client
from objectvision_devstack.api_users import PASSWORD, Account, fresh_network, signed_in
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.stack import Stack
from objectvision_devstack.triton import REPOSITORY_ROOT
from objectvision_devstack.videos import panned, write_video

from .conftest import JOB_WITHIN_SECONDS, finished_video_job

BUS = REPOSITORY_ROOT.parent / "shared" / "images" / "bus.jpg"
FRAMES = 8


@pytest.fixture(scope="module")
def panned_bus(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """0.8 s at 10 fps, 640x480, H.264 in MP4: bus.jpg moving 6 pixels right a frame."""
    path = tmp_path_factory.mktemp("tracking") / "panned-bus.mp4"
    return write_video(path, panned(BUS, FRAMES, step=6), fps=10).read_bytes()


async def _account(client: httpx.AsyncClient) -> Account:
    return await signed_in(client, prefix="tracking", name="Tracking User")


def _buses(frame: dict) -> list[dict]:
    return [found for found in frame["detections"] if found["class"] == "bus"]


async def test_a_tracked_video_gives_the_bus_one_track_id_from_its_second_frame_on(
    gateway_client: httpx.AsyncClient, panned_bus: bytes
) -> None:
    account = await _account(gateway_client)

    job, frames = await finished_video_job(
        gateway_client, account, panned_bus, frames=FRAMES, track=True
    )
    assert job["total"] == FRAMES, job

    assert job["video"]["tracked"] is True
    first, *later = frames
    assert len(_buses(first)) == 1, first
    assert all(found["track_id"] is None for found in first["detections"]), (
        "no track is confirmed in the first frame"
    )
    bus_ids = set()
    for frame in later:
        (bus,) = _buses(frame)
        assert bus["track_id"] is not None, frame
        bus_ids.add(bus["track_id"])
        ids = [found["track_id"] for found in frame["detections"] if found["track_id"] is not None]
        assert len(ids) == len(set(ids)), frame
    assert len(bus_ids) == 1, f"the bus changed tracks: {bus_ids}"


async def test_without_track_no_object_has_a_track_id(
    gateway_client: httpx.AsyncClient, panned_bus: bytes
) -> None:
    account = await _account(gateway_client)

    job, frames = await finished_video_job(gateway_client, account, panned_bus, frames=FRAMES)
    assert job["total"] == FRAMES, job

    assert job["video"]["tracked"] is False
    assert all(_buses(frame) for frame in frames)
    assert {found["track_id"] for frame in frames for found in frame["detections"]} == {None}


def test_the_client_and_the_command_ask_for_tracking(
    stack: Stack, panned_bus: bytes, tmp_path: Path
) -> None:
    address = f"tracking-cli-{uuid.uuid4().hex}@example.com"
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(address, PASSWORD, "Tracking CLI")
        client.login(address, PASSWORD)
        job = client.submit_video(("bus.mp4", panned_bus), every=1, track=True)
        assert job.video is not None and job.video.tracked
        client.wait_for_job(job.job_id, poll_seconds=0.25, timeout=JOB_WITHIN_SECONDS)
        page = client.video_frames(job.job_id)
    bus_ids = [
        [obj.track_id for obj in frame.detections if obj.class_name == "bus"]
        for frame in page.frames
    ]
    assert bus_ids[0] == [None]
    assert len({tuple(ids) for ids in bus_ids[1:]}) == 1 and bus_ids[1][0] is not None, bus_ids

    clip = tmp_path / "bus.mp4"
    clip.write_bytes(panned_bus)
    objectvision = CommandLine(stack.gateway_url, tmp_path / "config")
    objectvision.run("login", "--email", address, "--password", PASSWORD)

    result = objectvision.run("detect-video", str(clip), "--every", "1", "--track", "--wait")

    assert f"{FRAMES} frames (every 1th frame, objects tracked)" in result.stderr
    rows = [line.split(maxsplit=2) for line in result.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == [str(index) for index in range(FRAMES)]
    assert "#" not in rows[0][2] and "bus" in rows[0][2]
    # From the second frame on, the bus is shown with its one track id: `#3 bus`.
    shown = {tuple(re.findall(r"#(\d+) bus\b", row[2])) for row in rows[1:]}
    assert len(shown) == 1 and len(next(iter(shown))) == 1, rows
