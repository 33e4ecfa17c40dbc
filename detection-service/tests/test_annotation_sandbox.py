"""Annotated images are decoded and drawn, and tiles cut (ADR 0051), by confined child
processes (ADR 0043): what they answer, what they can see and use, and what a crash, a hang or
a refusal does (that request fails, saying why; the next one is served, by a new child where
the old one is gone)."""

import asyncio
import os
import signal
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from detection_service.pipeline import tiling
from detection_service.pipeline.annotate import annotate
from detection_service.pipeline.annotation_sandbox import SandboxedAnnotator
from detection_service.pipeline.decode import ImageLimits, decode, inspect
from detection_service.pipeline.types import DetectedObject
from detection_service.sandbox.limits import SandboxLimits
from objectvision_common.errors import InvalidArgument

from .conftest import IMAGES

IMAGE_LIMITS = ImageLimits(max_bytes=20 * 2**20, max_pixels=40_000_000)
MEMORY = 768 * 2**20
A_SECRET = "annotation-test-secret-value"
OBJECTS = [
    DetectedObject(5, "bus", 0.91, 20.0, 230.0, 800.0, 750.0, track_id=3, zones=("road",)),
    DetectedObject(0, "person", 0.88, 50.0, 400.0, 240.0, 900.0),
]


def _annotator(*, workers: int = 1, timeout_s: float = 10.0) -> SandboxedAnnotator:
    return SandboxedAnnotator(
        limits=SandboxLimits(memory_bytes=MEMORY, cpu_seconds=None),
        images=IMAGE_LIMITS,
        workers=workers,
        timeout_s=timeout_s,
    )


@pytest.fixture
async def annotator() -> AsyncIterator[SandboxedAnnotator]:
    drawing = _annotator()
    yield drawing
    drawing.close()


@pytest.fixture(scope="module")
def bus() -> bytes:
    return (IMAGES / "bus.jpg").read_bytes()


def _proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace")


def _status(pid: int) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in _proc(pid, "status").splitlines())


def _running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def test_the_child_draws_exactly_what_the_service_drew_itself(annotator, bus):
    drawn = await annotator.annotate(bus, OBJECTS)
    assert drawn == annotate(decode(bus, inspect(bus, IMAGE_LIMITS)), OBJECTS)
    assert drawn.startswith(b"\xff\xd8\xff")


async def test_the_child_holds_no_secret_and_is_confined_and_limited(monkeypatch, bus):
    monkeypatch.setenv("SERVICE_TOKEN_SECRET", A_SECRET)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://objectvision:{A_SECRET}@db/objectvision")
    drawing = _annotator()
    try:
        await drawing.annotate(bus, OBJECTS)
        (pid,) = drawing.pids
        environment = _proc(pid, "environ")
        assert A_SECRET not in environment and "DATABASE_URL" not in environment
        status = _status(pid)
        assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")
        limits = {
            line[:26].strip(): line[26:].split()[:2]
            for line in _proc(pid, "limits").splitlines()[1:]
        }
        assert limits["Max address space"][0] == str(MEMORY)
        assert limits["Max file size"] == ["0", "0"]
        assert limits["Max core file size"] == ["0", "0"]
        # Kept for the next image: no process start per request.
        await drawing.annotate(bus, OBJECTS[:1])
        assert drawing.pids == [pid]
    finally:
        drawing.close()


async def test_an_image_the_decoder_refuses_fails_alone_and_the_child_stays(
    annotator, bus, make_png
):
    await annotator.annotate(bus, OBJECTS)
    (pid,) = annotator.pids
    corrupt = make_png(64, 64, idat=b"\x78\x9c" + b"\xde\xad\xbe\xef" * 16)
    with pytest.raises(InvalidArgument, match="corrupt and cannot be decoded"):
        await annotator.annotate(corrupt, OBJECTS)
    assert await annotator.annotate(bus, OBJECTS)
    assert annotator.pids == [pid]


async def test_a_child_that_crashes_on_an_image_fails_that_request_and_is_replaced(annotator, bus):
    await annotator.annotate(bus, OBJECTS)
    (pid,) = annotator.pids
    # Stopped, the child cannot read the request; the SIGSEGV waits and kills it on SIGCONT,
    # as a decoder crashing on the request's image would.
    os.kill(pid, signal.SIGSTOP)
    request = asyncio.ensure_future(annotator.annotate(bus, OBJECTS))
    await asyncio.sleep(0.3)
    os.kill(pid, signal.SIGSEGV)
    os.kill(pid, signal.SIGCONT)
    with pytest.raises(
        InvalidArgument, match="could not be drawn: the decoder was stopped by SIGSEGV"
    ):
        await request
    assert await annotator.annotate(bus, OBJECTS)
    assert annotator.pids and annotator.pids != [pid]


async def test_a_child_that_hangs_is_stopped_after_the_timeout_and_replaced(bus):
    drawing = _annotator(timeout_s=1.0)
    try:
        await drawing.annotate(bus, OBJECTS)
        (pid,) = drawing.pids
        os.kill(pid, signal.SIGSTOP)
        with pytest.raises(InvalidArgument, match=r"took longer than 1 s \(ANNOTATION_TIMEOUT"):
            await drawing.annotate(bus, OBJECTS)
        assert await drawing.annotate(bus, OBJECTS)
        assert drawing.pids != [pid]
    finally:
        drawing.close()


async def test_concurrent_requests_share_the_children_one_image_each(bus):
    drawing = _annotator(workers=2)
    try:
        expected = annotate(decode(bus, inspect(bus, IMAGE_LIMITS)), OBJECTS)
        answers = await asyncio.gather(*(drawing.annotate(bus, OBJECTS) for _ in range(6)))
        assert answers == [expected] * 6
        assert len(drawing.pids) == 2
    finally:
        drawing.close()


async def test_closing_stops_every_child(bus):
    drawing = _annotator(workers=2)
    await asyncio.gather(drawing.annotate(bus, OBJECTS), drawing.annotate(bus, OBJECTS))
    pids = drawing.pids
    assert len(pids) == 2
    drawing.close()
    assert drawing.pids == []
    assert not any(_running(pid) for pid in pids), "killed and reaped"


def _turned_a_quarter(jpeg: bytes) -> bytes:
    """The JPEG with an EXIF Orientation of 6: shown turned 90 degrees clockwise."""
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    return b"\xff\xd8\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


async def test_the_child_cuts_the_tiles_of_the_image_as_shown_exif_turn_applied(annotator, bus):
    turned = _turned_a_quarter(bus)

    tiles = await annotator.cut_tiles(turned, 640, 0.2)

    assert tiles == tiling.cut(decode(turned, inspect(turned, IMAGE_LIMITS)), 640, 0.2)
    # bus.jpg is 810x1080 as stored and 1080x810 as shown: the grid is the shown image's.
    assert {(t.x, t.y) for t in tiles} == {(0, 0), (440, 0), (0, 170), (440, 170)}
    assert all(t.png.startswith(b"\x89PNG") for t in tiles)


async def test_a_child_that_crashes_while_cutting_tiles_fails_that_request_and_is_replaced(
    annotator, bus
):
    await annotator.cut_tiles(bus, 640, 0.2)
    (pid,) = annotator.pids
    os.kill(pid, signal.SIGSTOP)
    request = asyncio.ensure_future(annotator.cut_tiles(bus, 640, 0.2))
    await asyncio.sleep(0.3)
    os.kill(pid, signal.SIGSEGV)
    os.kill(pid, signal.SIGCONT)
    with pytest.raises(InvalidArgument, match="could not be cut into tiles: the decoder was"):
        await request
    assert len(await annotator.cut_tiles(bus, 640, 0.2)) == 4
    assert annotator.pids and annotator.pids != [pid]
