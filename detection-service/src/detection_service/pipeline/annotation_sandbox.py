"""Annotated images are drawn by confined child processes, not by the service (ADR 0043).

Drawing the boxes on a stored image means decoding it (libjpeg, libpng, libwebp through
OpenCV): the last place the service itself ran an image decoder on a user's file. A flaw
reached by a crafted image would have run beside the database URL and the service-token
secret, and a decoder crash took the whole service down with every request in flight. So the
decoding, drawing and encoding run in `python -m detection_service.pipeline.annotation_sandbox`
children (ANNOTATION_WORKERS of them, started when first needed and kept), which hold no
secret, limit their own memory, and confine themselves before their first image
(sandbox/confinement.py): no file at all, no network, no process.

A child serves one image at a time over its pipes (sandbox/channel.py): a header with the
image's size and its objects, the image's bytes; back, the JPEG or the refusal. One that
crashes, lies or takes longer than ANNOTATION_TIMEOUT_SECONDS fails that request, saying why,
and is replaced for the next.
"""

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import IO, Any

from detection_service.pipeline.annotate import BOXES, Rendering, annotate
from detection_service.pipeline.decode import ImageLimits, decode, inspect
from detection_service.pipeline.types import DetectedObject
from detection_service.sandbox import channel
from detection_service.sandbox.confinement import confine
from detection_service.sandbox.limits import SandboxLimits
from objectvision_common.errors import DomainError, InvalidArgument

_MODULE = "detection_service.pipeline.annotation_sandbox"
# The answer is a JPEG of the image: never more than a few times its raw pixels.
_MOST_JPEG_BYTES_PER_PIXEL = 3


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

    def _started(self) -> "subprocess.Popen[bytes]":
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
            assert child.stdin is not None
            setup = {"limits": asdict(self._limits), "images": asdict(self._images)}
            # A child that died at once is found out by the request that follows.
            with contextlib.suppress(BrokenPipeError):
                child.stdin.write(json.dumps(setup).encode() + b"\n")
                child.stdin.flush()
            self._child = child
        return self._child

    def draw(self, data: bytes, objects: Sequence[DetectedObject], rendering: Rendering) -> bytes:
        """The JPEG `rendering` describes (blocking: call in a thread). Raises the child's
        refusal, or InvalidArgument when the child crashed, lied or ran out of time on it."""
        with self._lock:
            child = self._started()
            timed_out = threading.Event()

            def stop() -> None:
                timed_out.set()
                child.kill()

            watchdog = threading.Timer(self._timeout_s, stop)
            watchdog.start()
            try:
                header = self._ask(child, data, objects, rendering)
                if header is not None and "error" in header:
                    refusal = channel.refusal(header["error"])
                    if refusal is not None:
                        raise refusal
                jpeg = self._answer(child, header)
            finally:
                watchdog.cancel()
            if jpeg is not None:
                return jpeg
            self._child = None
            ended = channel.how_it_ended(child)
            _release(child)
            if timed_out.is_set():
                ended = f"it took longer than {self._timeout_s:g} s (ANNOTATION_TIMEOUT_SECONDS)"
            raise InvalidArgument(f"the image could not be drawn: {ended}")

    def _ask(
        self,
        child: "subprocess.Popen[bytes]",
        data: bytes,
        objects: Sequence[DetectedObject],
        rendering: Rendering,
    ) -> dict[str, Any] | None:
        assert child.stdin is not None and child.stdout is not None
        try:
            channel.send(
                child.stdin,
                {
                    "image_bytes": len(data),
                    "objects": [asdict(obj) for obj in objects],
                    "rendering": rendering.to_json(),
                },
                data,
            )
        except (BrokenPipeError, ValueError):
            return None  # the child is gone; how it ended says why
        return channel.read_header(child.stdout)

    def _answer(
        self, child: "subprocess.Popen[bytes]", header: dict[str, Any] | None
    ) -> bytes | None:
        """The JPEG the header announces, read only if it is of a size a JPEG of an accepted
        image can have; None for anything else (the child is then treated as crashed)."""
        size = header.get("jpeg_bytes") if header is not None else None
        limit = self._images.max_pixels * _MOST_JPEG_BYTES_PER_PIXEL
        if not isinstance(size, int) or not 0 < size <= limit:
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
        if self._idle is None:
            self._idle = asyncio.Queue()
            for drawer in self._drawers:
                self._idle.put_nowait(drawer)
        drawer = await self._idle.get()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, drawer.draw, data, objects, rendering)
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
        objects = [DetectedObject.from_fields(value) for value in header["objects"]]
        rendering = Rendering.from_json(header.get("rendering", {}))
        try:
            jpeg = annotate(decode(data, inspect(data, images)), objects, rendering)
        except DomainError as error:
            channel.send(out, {"error": {"code": error.code, "message": error.message}})
            continue
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
        _serve(setup, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
