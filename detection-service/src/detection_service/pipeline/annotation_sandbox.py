"""Annotated images are drawn by confined child processes, not by the service (ADR 0043).

Drawing the boxes on a stored image means decoding it (libjpeg, libpng, libwebp through
OpenCV): the last place the service itself ran an image decoder on a user's file. A flaw
reached by a crafted image would have run beside the database URL and the service-token
secret, and a decoder crash took the whole service down with every request in flight. So the
decoding, drawing and encoding run in `python -m detection_service.pipeline.annotation_sandbox`
children (ANNOTATION_WORKERS of them, started when first needed and kept), which hold no
secret, limit their own memory, and confine themselves before their first image
(sandbox/confinement.py): no file at all, no network, no process.

The same children cut an image into the tiles of a tiled detection (ADR 0051): that also
decodes the user's file, and the grid is the decoded image's.

A child serves one image at a time over its pipes (sandbox/channel.py): a header with the
image's size and the task (its objects and rendering, or the tile size), the image's bytes;
back, the JPEG or the tiles, or the refusal. One that crashes, lies or takes longer than
ANNOTATION_TIMEOUT_SECONDS fails that request, saying why, and is replaced for the next.
That timeout is the image's: a new child says it is ready (imported, limited and confined)
before it is given one, and its start has a bound of its own.
"""

import asyncio
import contextlib
import functools
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import IO, Any, Concatenate, ParamSpec, Protocol, TypeVar

from detection_service.pipeline.annotate import BOXES, Rendering, annotate
from detection_service.pipeline.decode import ImageLimits, decode, inspect
from detection_service.pipeline.tiling import Tile, cut
from detection_service.pipeline.types import DetectedObject
from detection_service.sandbox import channel
from detection_service.sandbox.confinement import confine
from detection_service.sandbox.limits import SandboxLimits
from objectvision_common.errors import DomainError, InvalidArgument
from objectvision_common.limits import MAX_TILE_SIZE, MAX_TILES_PER_IMAGE

_MODULE = "detection_service.pipeline.annotation_sandbox"
# The answer is a JPEG of the image: never more than a few times its raw pixels.
_MOST_JPEG_BYTES_PER_PIXEL = 3
P = ParamSpec("P")
T = TypeVar("T")
# A tile is a PNG of at most MAX_TILE_SIZE squared pixels: never more than twice its raw size.
_MOST_TILE_BYTES = MAX_TILE_SIZE * MAX_TILE_SIZE * 3 * 2
# Starting a child imports NumPy and OpenCV: seconds on a busy machine, and none of the
# image's doing, so it is not counted against ANNOTATION_TIMEOUT_SECONDS but bounded apart.
_START_TIMEOUT_S = 60.0
_READY = {"ready": True}


class _Task(Protocol):
    """What a child is asked to do with one image, and how its answer's size is checked."""

    @property
    def what(self) -> str:
        """For the error when the child fails: "the image could not be {what}"."""

    def request(self) -> dict[str, Any]: ...

    def payload_size(self, header: dict[str, Any]) -> int | None:
        """The bytes the answer's header announces, if a true child could send them."""


@dataclass(frozen=True)
class _Drawing:
    objects: Sequence[DetectedObject]
    rendering: Rendering
    most_bytes: int
    what: str = "drawn"

    def request(self) -> dict[str, Any]:
        return {
            "objects": [asdict(obj) for obj in self.objects],
            "rendering": self.rendering.to_json(),
        }

    def payload_size(self, header: dict[str, Any]) -> int | None:
        size = header.get("jpeg_bytes")
        return size if isinstance(size, int) and 0 < size <= self.most_bytes else None


@dataclass(frozen=True)
class _Tiling:
    size: int
    overlap: float
    what: str = "cut into tiles"

    def request(self) -> dict[str, Any]:
        return {"task": "tiles", "tile_size": self.size, "tile_overlap": self.overlap}

    def payload_size(self, header: dict[str, Any]) -> int | None:
        places, sizes = header.get("tiles"), header.get("tile_bytes")
        if not isinstance(places, list) or not isinstance(sizes, list):
            return None
        if not 0 < len(places) == len(sizes) <= MAX_TILES_PER_IMAGE:
            return None
        for place, size in zip(places, sizes, strict=True):
            fits = isinstance(place, list) and len(place) == 4
            fits = fits and all(isinstance(value, int) and value >= 0 for value in place)
            if not fits or not 0 < place[2] <= self.size or not 0 < place[3] <= self.size:
                return None
            if not isinstance(size, int) or not 0 < size <= _MOST_TILE_BYTES:
                return None
        return sum(sizes)

    @staticmethod
    def tiles(header: dict[str, Any], payload: bytes) -> list[Tile]:
        tiles, start = [], 0
        for (x, y, width, height), size in zip(header["tiles"], header["tile_bytes"], strict=True):
            tiles.append(Tile(x, y, width, height, payload[start : start + size]))
            start += size
        return tiles


class _Drawer:
    """One child and the lock that gives it one request at a time; the child starts on its
    first request and again after it was lost."""

    def __init__(self, limits: SandboxLimits, images: ImageLimits, timeout_s: float) -> None:
        self._limits, self._images, self._timeout_s = limits, images, timeout_s
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def _started(self, task: _Task) -> "subprocess.Popen[bytes]":
        """The child, started and ready for an image if it was not; raises InvalidArgument,
        as a failed request does, when a new one dies or does not get ready."""
        if self._child is not None and self._child.poll() is not None:
            _release(self._child)  # died while idle: replaced without a failed request
            self._child = None
        if self._child is None:
            child = channel.spawn(
                _MODULE,
                "serve",
                # OpenCV refuses larger images itself, before it allocates (pipeline/__init__).
                environment={"MAX_IMAGE_PIXELS": str(self._images.max_pixels)},
            )
            assert child.stdin is not None and child.stdout is not None
            setup = {"limits": asdict(self._limits), "images": asdict(self._images)}
            # A child that died at once says so by not answering.
            with contextlib.suppress(BrokenPipeError):
                child.stdin.write(json.dumps(setup).encode() + b"\n")
                child.stdin.flush()
            with _killed_after(child, _START_TIMEOUT_S) as timed_out:
                ready = channel.read_header(child.stdout)
            if ready != _READY:
                ended = channel.how_it_ended(child)
                _release(child)
                if timed_out.is_set():
                    ended = f"it did not start within {_START_TIMEOUT_S:g} s"
                raise InvalidArgument(f"the image could not be {task.what}: {ended}")
            self._child = child
        return self._child

    def draw(self, data: bytes, objects: Sequence[DetectedObject], rendering: Rendering) -> bytes:
        """The JPEG `rendering` describes (blocking: call in a thread). Raises the child's
        refusal, or InvalidArgument when the child crashed, lied or ran out of time on it."""
        most = self._images.max_pixels * _MOST_JPEG_BYTES_PER_PIXEL
        _, jpeg = self._exchange(data, _Drawing(objects, rendering, most))
        return jpeg

    def cut(self, data: bytes, size: int, overlap: float) -> list[Tile]:
        """The image's tiles (blocking: call in a thread); raises as `draw`."""
        tiling = _Tiling(size, overlap)
        header, payload = self._exchange(data, tiling)
        return tiling.tiles(header, payload)

    def _exchange(self, data: bytes, task: _Task) -> tuple[dict[str, Any], bytes]:
        """The child's answer to `task` on `data`: its header and the bytes that follow."""
        with self._lock:
            child = self._started(task)
            with _killed_after(child, self._timeout_s) as timed_out:
                header = self._ask(child, data, task)
                if header is not None and "error" in header:
                    refusal = channel.refusal(header["error"])
                    if refusal is not None:
                        raise refusal
                payload = self._answer(child, header, task)
            if header is not None and payload is not None:
                return header, payload
            self._child = None
            ended = channel.how_it_ended(child)
            _release(child)
            if timed_out.is_set():
                ended = f"it took longer than {self._timeout_s:g} s (ANNOTATION_TIMEOUT_SECONDS)"
            raise InvalidArgument(f"the image could not be {task.what}: {ended}")

    def _ask(
        self, child: "subprocess.Popen[bytes]", data: bytes, task: _Task
    ) -> dict[str, Any] | None:
        assert child.stdin is not None and child.stdout is not None
        try:
            channel.send(child.stdin, {"image_bytes": len(data), **task.request()}, data)
        except (BrokenPipeError, ValueError):
            return None  # the child is gone; how it ended says why
        return channel.read_header(child.stdout)

    def _answer(
        self, child: "subprocess.Popen[bytes]", header: dict[str, Any] | None, task: _Task
    ) -> bytes | None:
        """The bytes the header announces, read only if the task's answer can be of that
        size; None for anything else (the child is then treated as crashed)."""
        size = task.payload_size(header) if header is not None else None
        if size is None:
            return None
        assert child.stdout is not None
        return channel.read_exactly(child.stdout, size)

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.kill()
                self._child.wait()
                _release(self._child)
                self._child = None


@contextlib.contextmanager
def _killed_after(child: "subprocess.Popen[bytes]", seconds: float) -> Iterator[threading.Event]:
    """Kills `child` if the block is still waiting on it after `seconds` (its pipe then
    ends); the event says whether that happened."""
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        child.kill()

    watchdog = threading.Timer(seconds, stop)
    watchdog.start()
    try:
        yield timed_out
    finally:
        watchdog.cancel()


def _release(child: "subprocess.Popen[bytes]") -> None:
    """Close the pipes of a child that has exited."""
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            with contextlib.suppress(BrokenPipeError):
                stream.close()


class SandboxedAnnotator:
    """Draws annotated images in up to `workers` confined children, one image per child at a
    time; callers beyond that wait for a free child. Each child is waited on by a thread of
    the annotator's own, so a slow image never holds a thread of the detection path's pool."""

    def __init__(
        self,
        *,
        limits: SandboxLimits,
        images: ImageLimits,
        workers: int,
        timeout_s: float,
    ) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="annotation")
        self._drawers = [_Drawer(limits, images, timeout_s) for _ in range(workers)]
        self._idle: asyncio.Queue[_Drawer] | None = None

    @property
    def pids(self) -> list[int]:
        """The children running now, for whoever watches them (an operator, a test)."""
        return [drawer.pid for drawer in self._drawers if drawer.pid is not None]

    async def annotate(
        self,
        data: bytes,
        objects: Sequence[DetectedObject],
        rendering: Rendering = BOXES,
    ) -> bytes:
        """`data` (an image whose header was checked) as JPEG with `objects` drawn on it, or
        as `rendering` says otherwise (without boxes, with classes pixelated)."""
        return await self._in_a_child(_Drawer.draw, data, objects, rendering)

    async def cut_tiles(self, data: bytes, size: int, overlap: float) -> list[Tile]:
        """`data` (an image whose header was checked) cut into overlapping PNG tiles of `size`
        pixels a side (tiling.cut), decoded and cut in a child."""
        return await self._in_a_child(_Drawer.cut, data, size, overlap)

    async def _in_a_child(
        self, work: Callable[Concatenate[_Drawer, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work` done by the next free child, waited on in the annotator's own thread."""
        if self._idle is None:
            self._idle = asyncio.Queue()
            for drawer in self._drawers:
                self._idle.put_nowait(drawer)
        drawer = await self._idle.get()
        try:
            loop = asyncio.get_running_loop()
            call = functools.partial(work, drawer, *args, **kwargs)
            return await loop.run_in_executor(self._executor, call)
        finally:
            self._idle.put_nowait(drawer)

    def close(self) -> None:
        for drawer in self._drawers:
            drawer.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


# ---- the child ------------------------------------------------------------------------------


def _serve(setup: Mapping[str, Any], stdin: IO[bytes], out: IO[bytes]) -> None:
    images = ImageLimits(**setup["images"])
    while (header := channel.read_header(stdin)) is not None:
        data = channel.read_exactly(stdin, int(header["image_bytes"]))
        if data is None:
            return
        try:
            image = decode(data, inspect(data, images))
        except DomainError as error:
            channel.send(out, {"error": {"code": error.code, "message": error.message}})
            continue
        if header.get("task") == "tiles":
            tiles = cut(image, int(header["tile_size"]), float(header["tile_overlap"]))
            places = [[tile.x, tile.y, tile.width, tile.height] for tile in tiles]
            sizes = [len(tile.png) for tile in tiles]
            channel.send(out, {"tiles": places, "tile_bytes": sizes}, *(t.png for t in tiles))
            continue
        objects = [DetectedObject.from_fields(value) for value in header["objects"]]
        rendering = Rendering.from_json(header.get("rendering", {}))
        jpeg = annotate(image, objects, rendering)
        channel.send(out, {"jpeg_bytes": len(jpeg)}, jpeg)


def main() -> None:
    """`python -m detection_service.pipeline.annotation_sandbox serve`: its limits on the
    first line of stdin, then one request after another."""
    setup = json.loads(sys.stdin.buffer.readline())
    limits = setup["limits"]
    # Long-lived: its CPU is bounded per image by the parent's timeout (cpu_seconds is None).
    channel.limit_self(limits)
    confinement = confine(None)
    if limits["require_confinement"] and not confinement.complete:
        print(f"annotation sandbox: {confinement.describe()}", file=sys.stderr)
        sys.exit(channel.UNCONFINED_EXIT)
    # A broken pipe: the service closed it, nothing more is wanted.
    with contextlib.suppress(BrokenPipeError):
        channel.send(sys.stdout.buffer, _READY)
        _serve(setup, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
