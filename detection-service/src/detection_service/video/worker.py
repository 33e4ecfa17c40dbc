"""Processing one video job: decode, sample, detect, draw and encode, all as a stream.

Three things run at once and none holds the video: a reader takes the next sampled frame
from a sandboxed child process that decodes it (PyAV, ADR 0040) and starts its detection
through the shared micro-batcher (frames are sent as JPEG, the encoded-bytes contract every
image uses, ADR 0010); a bounded queue of at most VIDEO_FRAMES_IN_FLIGHT frames holds them in
order; the writer awaits each frame's objects,
draws them and encodes the frame into the annotated video (PyAV + libx264, in the CPU pool),
and commits frames in small groups with a progress event. Memory is bounded by the queue, not
by the video's length.

A worker that dies leaves its message pending (ADR 0005); the next one decodes the video again
from the start, detects only the frames not yet committed (it draws the stored objects of the
others), and writes a new annotated file. The annotated video is stored, and named in the job,
only in the transaction that finishes the job.

A job cancelled while it runs (ADR 0022) is noticed at the next commit of frames, which finds
the job ended: the worker stops sampling and drops what it had not committed.
"""

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import timedelta
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import av.error
import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.images.storage import ObjectNotFoundError, ObjectStorage
from detection_service.jobs.models import KIND_VIDEO
from detection_service.metrics import DetectionMetrics
from detection_service.pipeline.annotate import Rendering, render
from detection_service.pipeline.detector import Detector
from detection_service.pipeline.types import DetectedObject
from detection_service.sandbox.limits import SandboxLimits
from detection_service.tracking.counting import RegionCounter, track_and_count
from detection_service.tracking.tracker import ObjectTracker, TrackingSettings
from detection_service.video import service
from detection_service.video.decoding import DecodedFrame
from detection_service.video.sandbox import (
    SandboxedFrameReader,
    VideoDecodeError,
)
from objectvision_common.errors import DomainError
from objectvision_common.tracing import tracer

T = TypeVar("T")
logger = logging.getLogger(__name__)
_TRACER = tracer(__name__)

# Commit at least this often while a video runs (progress events, and less to redo on a crash).
_COMMIT_EVERY_SECONDS = 1.0
# The annotated video's clock: milliseconds, so each frame keeps its source timestamp.
_TIME_BASE = Fraction(1, 1000)
ANNOTATED_CONTENT_TYPE = "video/mp4"


class AnnotatedWriter:
    """H.264 in MP4 (what every browser plays), written frame by frame to a local file.

    Each frame keeps its source timestamp, so the annotated video lasts as long as the
    original and shows the sampled frames at their moments. H.264 in 4:2:0 needs even sizes:
    an odd last row or column is cropped.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        rate: float,
        redact: frozenset[str] = frozenset(),
        regions: tuple[tuple[tuple[float, float], ...], ...] = (),
    ) -> None:
        # Every frame shows its boxes, over the `redact` classes' objects pixelated (ADR 0049),
        # and the regions of interest the job keeps objects in outlined (ADR 0053).
        self._rendering = Rendering(boxes=True, redact=redact, regions=regions)
        self._output = av.open(str(path), mode="w", format="mp4")
        self._width = width - width % 2
        self._height = height - height % 2
        stream = self._output.add_stream(
            "libx264", rate=Fraction(rate).limit_denominator(1001) if rate > 0 else 1
        )
        stream.width = self._width
        stream.height = self._height
        stream.pix_fmt = "yuv420p"
        stream.time_base = _TIME_BASE
        stream.codec_context.time_base = _TIME_BASE
        stream.options = {"preset": "veryfast", "crf": "23"}
        self._stream = stream
        # `abort` waits for a write still running in a thread (cancelling an awaited
        # executor call does not stop its thread).
        self._lock = threading.Lock()
        self._last_pts = -1
        self.frames = 0
        self._closed = False

    def write(
        self,
        bgr: np.ndarray,
        objects: Sequence[DetectedObject],
        seconds: float,
        counter: RegionCounter | None = None,
    ) -> None:
        """One frame with its objects' boxes and, with `counter`, the counting zones with
        who stands in them and the lines with their totals up to this frame."""
        with self._lock:
            self._write(bgr, objects, seconds, counter)

    def _write(
        self,
        bgr: np.ndarray,
        objects: Sequence[DetectedObject],
        seconds: float,
        counter: RegionCounter | None,
    ) -> None:
        canvas = render(bgr, objects, self._rendering)
        if counter is not None:
            canvas = counter.draw(canvas)
        canvas = canvas[: self._height, : self._width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas), format="bgr24")
        self._last_pts = max(round(seconds * 1000), self._last_pts + 1)
        frame.pts = self._last_pts
        frame.time_base = _TIME_BASE
        for packet in self._stream.encode(frame):
            self._output.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (the MP4 index is written here)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for packet in self._stream.encode():
                self._output.mux(packet)
            self._output.close()

    def abort(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
                    self._output.close()


class _DecodeFailed:
    """Put on the queue in place of a frame when the video stops decoding."""

    def __init__(self, message: str) -> None:
        self.message = message


class _ReaderCrashed:
    """Put on the queue when the reader fails otherwise (a bug, not the video): the job run
    fails, its message stays unacknowledged and is retried, as a batch job's would be."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class VideoProcessor:
    """Runs video jobs; safe to run twice on one job (frames and the end commit once).

    `lease`: as JobProcessor's, a video job held by a live worker is left to it."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        storage: ObjectStorage,
        detector: Detector,
        executor: Executor,
        metrics: DetectionMetrics,
        frames_in_flight: int,
        tracking: TrackingSettings,
        sandbox: SandboxLimits,
        lease: timedelta,
        live_counts_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._live_counts_seconds = live_counts_seconds
        self._lease = lease
        self._sandbox = sandbox
        self._tracking = tracking
        self._storage = storage
        self._detector = detector
        self._executor = executor
        self._metrics = metrics
        self._in_flight = frames_in_flight
        # The model version that answered this process's latest frame (recorded on the job).
        self._model_version = ""

    async def run(self, job_id: uuid.UUID) -> bool:
        """Process the job if it is a video job; False (nothing done) for a batch job."""
        async with self._sessions() as session:
            if await service.job_kind(session=session, job_id=job_id) != KIND_VIDEO:
                return False
        work = await self.start(job_id)
        if work is not None:
            await self.process(work)
        return True

    async def start(self, job_id: uuid.UUID) -> service.VideoWork | None:
        """Mark the video job processing; what is left to do, or None if it has ended."""
        async with self._sessions.begin() as session:
            return await service.start_video_job(session=session, job_id=job_id, lease=self._lease)

    async def process(self, work: service.VideoWork) -> None:
        """Decode, detect, draw and commit the job's frames, then finish it; or stop at the
        commit that finds the job ended (cancelled, or finished by another worker)."""
        with _TRACER.start_as_current_span(
            "detection video job", attributes={"objectvision.job_id": str(work.job_id)}
        ):
            try:
                await self._process(work)
            except service.JobEnded:
                logger.info(
                    "the video job ended while it ran; stopped", extra={"job": str(work.job_id)}
                )

    async def _call(self, function: Callable[..., T], *args: object) -> T:
        """Blocking decode/encode work in the CPU pool, never on the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def _process(self, work: service.VideoWork) -> None:
        try:
            path = await self._storage.local_path(work.storage_key)
        except ObjectNotFoundError:
            await self._finish(work, None, "the uploaded video is no longer stored")
            return
        scratch = self._storage.scratch_path()
        reader: SandboxedFrameReader | None = None
        writer: AnnotatedWriter | None = None
        try:
            reader = await self._call(
                lambda: SandboxedFrameReader(
                    path,
                    work.container,
                    work.sampling,
                    width=work.width,
                    height=work.height,
                    sandbox=self._sandbox,
                )
            )
            rate = work.sampling.fps or (work.frame_rate / (work.sampling.every or 1))
            writer = await self._call(
                lambda: AnnotatedWriter(
                    scratch,
                    width=work.width,
                    height=work.height,
                    rate=rate,
                    redact=work.redact,
                    regions=work.options.regions,
                )
            )
            tracker = ObjectTracker(self._tracking, frame_rate=rate) if work.tracked else None
            counter = await self._call(
                functools.partial(
                    RegionCounter.of, work.lines, work.zones, picture=(work.width, work.height)
                )
            )
            failure = await self._pipeline(work, reader, writer, tracker, counter)
            annotated = None
            if failure is None:
                await self._call(writer.close)
                annotated = await self._storage.put_file(scratch)
            kept = await self._finish(work, annotated, failure)
            if annotated is not None and not kept:
                await self._storage.delete(annotated)
        finally:
            if writer is not None:
                await self._call(writer.abort)
            if reader is not None:
                await self._call(reader.close)
            scratch.unlink(missing_ok=True)

    async def _finish(
        self, work: service.VideoWork, annotated: str | None, error: str | None
    ) -> bool:
        async with self._sessions.begin() as session:
            return await service.finish_video_job(
                session=session,
                job_id=work.job_id,
                user_id=work.user_id,
                annotated=annotated,
                error=error,
            )

    async def _pipeline(
        self,
        work: service.VideoWork,
        reader: SandboxedFrameReader,
        writer: AnnotatedWriter,
        tracker: ObjectTracker | None,
        counter: RegionCounter | None,
    ) -> str | None:
        """Decode, detect, draw and commit every sampled frame; the reason the video failed,
        or None.

        A tracked video's frames go through the tracker here, in order, the committed ones
        of an earlier attempt included: fed the same objects in the same order it gives them
        the same ids again, and the frames this attempt adds continue those tracks. The line
        counter follows the tracker the same way, so the committed frames' crossings (stored
        already, not stored again) bring its totals to where the earlier attempt stopped."""
        queue: asyncio.Queue[
            tuple[DecodedFrame, asyncio.Future[service.FrameRecord]]
            | _DecodeFailed
            | _ReaderCrashed
            | None
        ] = asyncio.Queue(maxsize=self._in_flight)

        async def read() -> None:
            try:
                while (frame := await self._call(reader.next_sampled)) is not None:
                    stored = work.done.get(frame.index)
                    if stored is not None:
                        done: asyncio.Future[service.FrameRecord] = (
                            asyncio.get_running_loop().create_future()
                        )
                        done.set_result(service.FrameRecord(frame.index, frame.seconds, stored))
                        await queue.put((frame, done))
                    else:
                        task = asyncio.ensure_future(self._detect(frame, work))
                        await queue.put((frame, task))
                await queue.put(None)
            except VideoDecodeError as error:
                await queue.put(_DecodeFailed(error.message))
            except Exception as error:
                await queue.put(_ReaderCrashed(error))

        reader_task = asyncio.ensure_future(read())
        pending: list[service.FrameRecord] = []
        last_commit = time.monotonic()
        # When the counts so far last went out on a progress event (never yet).
        counted_at = -math.inf

        def counts_due() -> bool:
            nonlocal counted_at
            if counter is None or time.monotonic() - counted_at < self._live_counts_seconds:
                return False
            counted_at = time.monotonic()
            return True

        failure: str | None = None
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, _DecodeFailed):
                    failure = item.message
                    break
                if isinstance(item, _ReaderCrashed):
                    raise item.error
                frame, outcome = item
                record = await outcome
                if tracker is not None and record.error is None:
                    objects, crossings = await self._call(
                        track_and_count, tracker, counter, record.objects, (work.width, work.height)
                    )
                    record = dataclasses.replace(record, objects=objects, crossings=crossings)
                if frame.index not in work.done:
                    pending.append(record)
                await self._call(writer.write, frame.bgr, record.objects, frame.seconds, counter)
                if len(pending) >= self._in_flight or (
                    pending and time.monotonic() - last_commit >= _COMMIT_EVERY_SECONDS
                ):
                    await self._commit(work, pending, with_counts=counts_due())
                    pending = []
                    last_commit = time.monotonic()
            await self._commit(work, pending, with_counts=counts_due())
            await reader_task
        finally:
            reader_task.cancel()
            while not queue.empty():
                leftover = queue.get_nowait()
                if isinstance(leftover, tuple):
                    leftover[1].cancel()
        return failure

    async def _commit(
        self, work: service.VideoWork, frames: list[service.FrameRecord], *, with_counts: bool
    ) -> None:
        if not frames:
            return
        async with self._sessions.begin() as session:
            new = await service.record_frames(
                session=session,
                job_id=work.job_id,
                user_id=work.user_id,
                frames=frames,
                model_version=self._model_version,
                with_counts=with_counts,
            )
        for frame in frames[:new]:
            self._metrics.job_items.labels("completed" if frame.error is None else "failed").inc()

    async def _detect(self, frame: DecodedFrame, work: service.VideoWork) -> service.FrameRecord:
        """One frame through the shared batcher; Triton being away (or the job's model
        loading) is waited out, not failed."""
        try:
            result = await self._detector.detect_when_available(
                frame.jpeg, work.options, user_id=work.user_id, model=work.model
            )
        except DomainError as error:
            return service.FrameRecord(frame.index, frame.seconds, [], error.message)
        self._model_version = result.model_version or self._model_version
        return service.FrameRecord(frame.index, frame.seconds, result.objects)
