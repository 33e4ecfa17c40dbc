"""Counting the tracked objects that cross lines in a video job (ADR 0039), through the gateway
with every part real.

A video job submitted with `track=true` and `lines` counts each tracked object whose box
centre moves from one side of a line to the other: each frame of `/jobs/{id}/frames` lists
the `crossings` seen in it (line, track id, class, in or out), and the job's video gives its
`lines` back with the `line_counts` (in and out by line and class) that those crossings add
up to. Seen from a line's start looking towards its end, "in" is from the right-hand side to
the left-hand side. The video pans bus.jpg 6 pixels right a frame
(objectvision_devstack.videos.panned), sampled at every frame as tracking wants; a line is
drawn across where the bus's centre passes, once from top to bottom ("in" for the bus going
right) and once from bottom to top ("out"). Each test signs up its own user.

The tests that need the stack are slow (the main suite is near its time budget); the CLI's
usage errors need no server and run in the main suite.
"""

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from objectvision_client import Client, CountingLine
from objectvision_devstack.api_users import PASSWORD, Account, fresh_network, signed_in
from objectvision_devstack.stack import Stack

from .conftest import (
    JOB_WITHIN_SECONDS,
    PANNED_FRAMES,
    PANNED_SIZE,
    detect_video_usage_error,
    finished_video_job,
    refused_video_upload,
    tracked_video_command,
)

FRAMES = PANNED_FRAMES
WIDTH, HEIGHT = PANNED_SIZE


def _gate_lines(x: int) -> list[dict[str, Any]]:
    """The same vertical segment, drawn downwards ("gate") and upwards ("gate reversed"),
    and a line along the top edge that nothing crosses (nothing moves up or down)."""
    return [
        {"name": "gate", "start": [x, 0], "end": [x, HEIGHT]},
        {"name": "gate reversed", "start": [x, HEIGHT], "end": [x, 0]},
        {"name": "top edge", "start": [0, 2], "end": [WIDTH, 2]},
    ]


async def _account(client: httpx.AsyncClient) -> Account:
    return await signed_in(client, prefix="counting", name="Counting User")


def _tallied(crossings: list[dict]) -> Counter[tuple[str, int, str, str]]:
    return Counter(
        (crossing["line"], crossing["class_id"], crossing["class_name"], crossing["direction"])
        for crossing in crossings
    )


def _counted(line_counts: list[dict]) -> Counter[tuple[str, int, str, str]]:
    counted: Counter[tuple[str, int, str, str]] = Counter()
    for count in line_counts:
        key = (count["line"], count["class_id"], count["class_name"])
        counted[(*key, "in")] += count["crossed_in"]
        counted[(*key, "out")] += count["crossed_out"]
    return +counted


@pytest.mark.slow
async def test_the_bus_crossing_a_line_is_counted_in_its_frame_and_in_the_jobs_counts(
    gateway_client: httpx.AsyncClient, panned_bus: bytes, bus_passes_x: int
) -> None:
    account = await _account(gateway_client)
    lines = _gate_lines(bus_passes_x)

    job, frames = await finished_video_job(
        gateway_client, account, panned_bus, frames=FRAMES, track=True, lines=lines
    )

    video = job["video"]
    assert video["tracked"] is True
    assert video["lines"] == lines, "the lines come back as they were sent"
    crossings = [crossing for frame in frames for crossing in frame["crossings"]]
    # Every crossing is one of a tracked object the frame shows, and is counted once.
    for frame in frames:
        shown = {(found["track_id"], found["class"]) for found in frame["detections"]}
        for crossing in frame["crossings"]:
            assert (crossing["track_id"], crossing["class_name"]) in shown, frame
    assert _counted(video["line_counts"]) == _tallied(crossings)
    # The bus went right: into "gate" (drawn downwards), out of "gate reversed" (upwards).
    bus_crossings = [crossing for crossing in crossings if crossing["class_name"] == "bus"]
    assert sorted((c["line"], c["direction"]) for c in bus_crossings) == [
        ("gate", "in"),
        ("gate reversed", "out"),
    ], crossings
    assert len({crossing["track_id"] for crossing in bus_crossings}) == 1
    bus_counts = [count for count in video["line_counts"] if count["class_name"] == "bus"]
    assert [(c["line"], c["crossed_in"], c["crossed_out"]) for c in bus_counts] == [
        ("gate", 1, 0),
        ("gate reversed", 0, 1),
    ]
    # Counts come line by line in the order the lines were given; nothing crossed the top edge.
    order = [line["name"] for line in lines]
    listed = [order.index(count["line"]) for count in video["line_counts"]]
    assert listed == sorted(listed)
    assert "top edge" not in {count["line"] for count in video["line_counts"]}


@pytest.mark.slow
async def test_a_line_that_leaves_the_picture_is_a_422_naming_it(
    gateway_client: httpx.AsyncClient, panned_bus: bytes
) -> None:
    """Only the service knows the picture's size, once it has probed the video."""
    account = await _account(gateway_client)
    outside = [{"name": "beyond", "start": [0, 10], "end": [WIDTH + 1, 10]}]

    error = await refused_video_upload(
        gateway_client,
        account,
        panned_bus,
        {"every": "1", "track": "true", "lines": json.dumps(outside)},
    )

    assert "beyond" in error["message"] and f"{WIDTH}x{HEIGHT}" in error["message"], error


@pytest.mark.slow
def test_the_client_and_the_command_count_line_crossings(
    stack: Stack, panned_bus: bytes, bus_passes_x: int, tmp_path: Path
) -> None:
    address = f"counting-cli-{uuid.uuid4().hex}@example.com"
    gate = CountingLine(name="gate", start=(bus_passes_x, 0), end=(bus_passes_x, HEIGHT))
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(address, PASSWORD, "Counting CLI")
        client.login(address, PASSWORD)
        job = client.submit_video(("bus.mp4", panned_bus), every=1, track=True, lines=[gate])
        assert job.video is not None and job.video.lines == (gate,)
        finished = client.wait_for_job(job.job_id, poll_seconds=0.25, timeout=JOB_WITHIN_SECONDS)
        page = client.video_frames(job.job_id)
    assert finished.video is not None
    counts = {
        (c.line, c.class_name): (c.crossed_in, c.crossed_out) for c in finished.video.line_counts
    }
    assert counts[("gate", "bus")] == (1, 0)
    crossed = [c for frame in page.frames for c in frame.crossings if c.class_name == "bus"]
    assert [(c.line, c.direction) for c in crossed] == [("gate", "in")]

    line = f"gate:{bus_passes_x},0,{bus_passes_x},{HEIGHT}"

    result = tracked_video_command(stack, address, panned_bus, tmp_path, "--line", line)

    assert "objects tracked, counted crossing 1 line" in result.stderr
    table = result.stdout.split("\n\n")[-1].splitlines()
    assert table[0].split() == ["LINE", "CLASS", "IN", "OUT"]
    rows = [row.split() for row in table[1:]]
    assert ["gate", "bus", "1", "0"] in rows
    # The progress line says the counts as the job goes (every class together), its last
    # line the final ones.
    went_in, went_out = (sum(int(row[column]) for row in rows) for column in (2, 3))
    assert f"completed: gate {went_in} in {went_out} out" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "value",
    [
        "gate",
        "gate:0,360,1280",
        "0,360,1280,360",
        ":0,360,1280,360",
        "gate:0,360,x,360",
        "g:1,2,3,nan",
    ],
)
def test_a_malformed_line_is_a_usage_error(tmp_path: Path, value: str) -> None:
    stderr = detect_video_usage_error(tmp_path, "--track", "--line", value)
    assert "argument --line" in stderr
    assert repr(value) in stderr or "not a number" in stderr, stderr


def test_a_line_without_track_is_a_usage_error(tmp_path: Path) -> None:
    stderr = detect_video_usage_error(tmp_path, "--line", "gate:0,360,640,360")
    assert "--line needs --track" in stderr
