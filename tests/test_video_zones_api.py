"""Counting zones in a video job (ADR 0042), through the gateway with every part real.

A video job submitted with `track=true` and `zones` names, on each object of each frame of
`/jobs/{id}/frames`, the zones it stands in: those whose polygon holds the bottom centre of its
box. The job's video gives its `zones` back with the `zone_counts` (by zone and class: how many
tracked objects visited, the most inside at once, the mean stay of a visitor) that those frames
add up to. The video pans bus.jpg 6 pixels right a frame (the `panned_bus` of conftest),
sampled at every frame as tracking wants: a zone over the whole picture holds the bus in every
frame, one from where the bus stands halfway through its track to the right edge is entered
once, and a thin strip along the top edge holds nobody. Each test signs up its own user.

As with the counting lines, what needs the stack is slow-marked (the main suite is near its
time budget), while the CLI's usage errors, refused before any request, stay in the main suite.
"""

import asyncio
import contextlib
import json
import statistics
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from objectvision_client import Client, CountingLine, CountingZone
from objectvision_devstack.api_users import PASSWORD, Account, fresh_network, signed_in
from objectvision_devstack.stack import Stack
from objectvision_devstack.videos import panned, write_video

from .conftest import (
    JOB_WITHIN_SECONDS,
    PANNED_FRAMES,
    PANNED_SIZE,
    SHARED_IMAGES,
    detect_video_usage_error,
    finished_video_job,
    refused_video_upload,
    tracked_video_command,
)

WIDTH, HEIGHT = PANNED_SIZE
# The bus is tracked from the second frame (0.1 s) to the last (0.7 s) of the 10 fps video.
BUS_TRACKED_SECONDS = (PANNED_FRAMES - 2) / 10


def _band(name: str, left: float, right: float) -> dict[str, Any]:
    """A zone over the whole height of the picture, from x = left to x = right."""
    return {"name": name, "polygon": [[left, 0], [right, 0], [right, HEIGHT], [left, HEIGHT]]}


def _zones(x: int) -> list[dict[str, Any]]:
    """The whole picture, its part east of x, and a strip along the top edge where nothing
    stands (every box there reaches further down)."""
    return [
        _band("everywhere", 0, WIDTH),
        _band("east", x, WIDTH),
        {"name": "top strip", "polygon": [[0, 0], [WIDTH, 0], [WIDTH, 2], [0, 2]]},
    ]


async def _account(client: httpx.AsyncClient) -> Account:
    return await signed_in(client, prefix="zones", name="Zone User")


def _counts_from_frames(frames: list[dict[str, Any]]) -> dict[tuple[str, str], tuple]:
    """(visited, peak, mean stay) by (zone, class), worked out from the frames' objects: the
    tracked objects seen inside, the most inside in one frame, and the mean of each tracked
    visitor's first-to-last seconds inside."""
    inside_per_frame: dict[tuple[str, str], list[int]] = defaultdict(list)
    seen_at: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for frame in frames:
        inside: dict[tuple[str, str], int] = defaultdict(int)
        for found in frame["detections"]:
            for zone in found["zones"]:
                inside[(zone, found["class"])] += 1
                if found["track_id"] is not None:
                    key = (zone, found["class"], found["track_id"])
                    seen_at[key].append(frame["timestamp_seconds"])
        for key, count in inside.items():
            inside_per_frame[key].append(count)
    stays: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (zone, class_name, _track), seconds in seen_at.items():
        stays[(zone, class_name)].append(max(seconds) - min(seconds))
    return {
        key: (
            len(stays[key]),
            max(counts),
            pytest.approx(statistics.fmean(stays[key]) if stays[key] else 0.0, abs=1e-3),
        )
        for key, counts in inside_per_frame.items()
    }


def _bus(frame: dict[str, Any]) -> dict[str, Any]:
    (bus,) = [found for found in frame["detections"] if found["class"] == "bus"]
    return bus


@pytest.mark.slow
async def test_each_object_names_the_zones_it_stands_in_and_the_job_counts_who_was_there(
    gateway_client: httpx.AsyncClient, panned_bus: bytes, bus_passes_x: int
) -> None:
    account = await _account(gateway_client)
    zones = _zones(bus_passes_x)

    job, frames = await finished_video_job(
        gateway_client, account, panned_bus, frames=PANNED_FRAMES, track=True, zones=zones
    )

    video = job["video"]
    assert video["tracked"] is True
    assert video["zones"] == zones, "the zones come back as they were sent"
    assert video["lines"] == [] and video["line_counts"] == []
    # Every object of every frame says where it stands, in the order the zones were given.
    order = [zone["name"] for zone in zones]
    for frame in frames:
        for found in frame["detections"]:
            assert found["zones"][:1] == ["everywhere"], (frame["frame_index"], found)
            assert found["zones"] == sorted(found["zones"], key=order.index)
    # The job's counts are what its frames say.
    counted = {
        (count["zone"], count["class_name"]): (
            count["visited"],
            count["peak"],
            count["mean_stay_seconds"],
        )
        for count in video["zone_counts"]
    }
    assert counted == _counts_from_frames(frames)
    # The bus: one visitor of the whole picture for all of its track, alone of its class.
    assert counted[("everywhere", "bus")] == (1, 1, pytest.approx(BUS_TRACKED_SECONDS, abs=1e-3))
    # It moves into "east" while it is tracked, and stays there.
    bus_in_east = ["east" in _bus(frame)["zones"] for frame in frames]
    assert bus_in_east[0] is False and bus_in_east[-1] is True, bus_in_east
    assert bus_in_east == sorted(bus_in_east), "once in, it stays in as it moves on"
    visited, peak, stay = counted[("east", "bus")]
    assert (visited, peak) == (1, 1)
    assert 0 <= stay < BUS_TRACKED_SECONDS
    # Counts come zone by zone in the order the zones were given; nobody stood in the strip.
    listed = [order.index(count["zone"]) for count in video["zone_counts"]]
    assert listed == sorted(listed)
    assert "top strip" not in {count["zone"] for count in video["zone_counts"]}


@pytest.mark.slow
async def test_the_jobs_websocket_brings_its_counts_while_it_runs(
    stack: Stack, gateway_client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Through every part (the worker's commit, the outbox, the events stream, the progress
    hub, the gateway): the job's WebSocket messages carry its zone counts before the final
    one, first as what the job had when the socket opened, then as it commits frames; the
    last of them, and the final message, are the job's counts as GET gives them."""
    account = await _account(gateway_client)
    # Long enough (about 5 s of inference here) to be running when the socket opens.
    frames = panned(SHARED_IMAGES / "bus.jpg", 60, step=1, width=WIDTH, height=HEIGHT)
    video = write_video(tmp_path / "long-pan.mp4", frames, fps=10).read_bytes()
    form = {"every": "1", "track": "true", "zones": json.dumps([_band("everywhere", 0, WIDTH)])}
    submitted = await gateway_client.post(
        "/api/v1/detect/video",
        files={"file": ("bus.mp4", video, "video/mp4")},
        data=form,
        headers=account.headers,
        timeout=120,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]

    messages = []
    url = f"{stack.gateway_url.replace('http://', 'ws://')}/api/v1/ws/jobs/{job_id}"
    async with asyncio.timeout(JOB_WITHIN_SECONDS):
        async with connect(url, additional_headers=account.headers) as socket:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    messages.append(json.loads(await socket.recv()))

    *progress, final = messages
    assert final["type"] == "job.completed", final
    counted = [message for message in progress if "zone_counts" in message]
    assert counted, f"no progress message carried counts: {progress}"
    job = await gateway_client.get(f"/api/v1/detect/jobs/{job_id}", headers=account.headers)
    zone_counts = job.json()["video"]["zone_counts"]
    assert final["zone_counts"] == zone_counts
    assert [count["zone"] for count in zone_counts] == ["everywhere"] * len(zone_counts)
    visited = [sum(count["visited"] for count in message["zone_counts"]) for message in counted]
    assert visited == sorted(visited)
    assert visited[-1] <= sum(count["visited"] for count in zone_counts)


@pytest.mark.slow
async def test_a_zone_that_leaves_the_picture_is_a_422_naming_it(
    gateway_client: httpx.AsyncClient, panned_bus: bytes
) -> None:
    """Only the service knows the picture's size, once it has probed the video."""
    account = await _account(gateway_client)
    outside = [_band("beyond", 0, WIDTH + 1)]

    error = await refused_video_upload(
        gateway_client,
        account,
        panned_bus,
        {"every": "1", "track": "true", "zones": json.dumps(outside)},
    )

    assert "beyond" in error["message"] and f"{WIDTH}x{HEIGHT}" in error["message"], error


@pytest.mark.slow
def test_the_client_and_the_command_count_who_was_in_a_zone_beside_a_line(
    stack: Stack, panned_bus: bytes, bus_passes_x: int, tmp_path: Path
) -> None:
    address = f"zones-cli-{uuid.uuid4().hex}@example.com"
    east = CountingZone(
        name="east",
        polygon=((bus_passes_x, 0), (WIDTH, 0), (WIDTH, HEIGHT), (bus_passes_x, HEIGHT)),
    )
    gate = CountingLine(name="gate", start=(bus_passes_x, 0), end=(bus_passes_x, HEIGHT))
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(address, PASSWORD, "Zones CLI")
        client.login(address, PASSWORD)
        job = client.submit_video(
            ("bus.mp4", panned_bus), every=1, track=True, lines=[gate], zones=[east]
        )
        assert job.video is not None and job.video.zones == (east,)
        finished = client.wait_for_job(job.job_id, poll_seconds=0.25, timeout=JOB_WITHIN_SECONDS)
        page = client.video_frames(job.job_id)
    assert finished.video is not None
    (bus_count,) = [c for c in finished.video.zone_counts if c.class_name == "bus"]
    assert (bus_count.zone, bus_count.visited, bus_count.peak) == ("east", 1, 1)
    # The bus enters the zone where it crosses the line: both are counted, side by side.
    bus_crossings = {
        count.line: (count.crossed_in, count.crossed_out)
        for count in finished.video.line_counts
        if count.class_name == "bus"
    }
    assert bus_crossings == {"gate": (1, 0)}
    bus_zones = [
        found.zones
        for frame in page.frames
        for found in frame.detections
        if found.class_name == "bus"
    ]
    assert bus_zones[0] == () and bus_zones[-1] == ("east",), bus_zones

    zone = f"east:{bus_passes_x},0,{WIDTH},0,{WIDTH},{HEIGHT},{bus_passes_x},{HEIGHT}"

    result = tracked_video_command(stack, address, panned_bus, tmp_path, "--zone", zone)

    assert "objects tracked, counted in 1 zone" in result.stderr
    table = result.stdout.split("\n\n")[-1].splitlines()
    assert table[0].split() == ["ZONE", "CLASS", "VISITED", "PEAK", "MEAN", "STAY"]
    rows = [row.split() for row in table[1:]]
    assert ["east", "bus", "1", "1"] in [row[:4] for row in rows], table
    visited = sum(int(row[2]) for row in rows)
    assert f"completed: east {visited} visited" in result.stderr, result.stderr
    assert "LINE" not in result.stdout, "no line was asked for"


@pytest.mark.parametrize(
    "value",
    [
        "queue",
        "queue:0,0,640,0",
        "queue:0,0,640,0,640",
        "0,0,640,0,640,200",
        ":0,0,640,0,640,200",
        "queue:0,0;640,0;640,200",
        "queue:0,0,640,0,x,200",
        "q:0,0,640,0,640,inf",
    ],
)
def test_a_malformed_zone_is_a_usage_error(tmp_path: Path, value: str) -> None:
    stderr = detect_video_usage_error(tmp_path, "--track", "--zone", value)
    assert "argument --zone" in stderr
    assert repr(value) in stderr or "not a number" in stderr, stderr


def test_a_zone_without_track_is_a_usage_error(tmp_path: Path) -> None:
    stderr = detect_video_usage_error(tmp_path, "--zone", "q:0,0,640,0,640,200")
    assert "--zone needs --track" in stderr
