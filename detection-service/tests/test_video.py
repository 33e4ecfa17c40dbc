"""Video jobs in the detection service (ADR 0016), against real PostgreSQL, Redis and Triton.

Every video here is made by the test from the shared images: a clip whose first seconds show
bus.jpg and whose last show zidane.jpg, so each sampled frame's timestamp says what it must
contain. Refusals are judged from the container before decoding and leave nothing stored.
"""

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import av
import grpc
import pytest
import sqlalchemy as sa

from detection_service.outbox import OUTBOX
from detection_service.video.models import video_frames, video_jobs
from detection_service.video.probe import (
    Sampler,
    Sampling,
    VideoContainer,
    VideoLimits,
    probe,
    sniff_container,
)
from objectvision.v1 import common_pb2, detection_pb2
from objectvision_common.errors import InvalidArgument, PayloadTooLarge, UnsupportedMediaType
from objectvision_devstack.processes import ManagedProcess, free_port
from objectvision_devstack.triton import LocalTriton
from objectvision_devstack.videos import make_video

from .conftest import IMAGES

DONE = (detection_pb2.JOB_STATUS_COMPLETED, detection_pb2.JOB_STATUS_FAILED)
FPS = 10
BUS = IMAGES / "bus.jpg"
ZIDANE = IMAGES / "zidane.jpg"
CHUNK = 64 * 1024
LIMITS = VideoLimits(max_bytes=2**30, max_seconds=600, max_frame_pixels=10**8, max_fps=60)


@pytest.fixture(scope="module")
def bus_then_zidane(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """4 s at 10 fps, 640x480, H.264 in MP4: bus.jpg for 2 s (frames 0-19), zidane.jpg for 2 s."""
    path = tmp_path_factory.mktemp("videos") / "bus-then-zidane.mp4"
    return make_video(path, [(BUS, 2 * FPS), (ZIDANE, 2 * FPS)], fps=FPS).read_bytes()


async def _messages(
    data: bytes, *, filename: str, fps: float, every: int, key: str
) -> AsyncIterator[detection_pb2.VideoUpload]:
    yield detection_pb2.VideoUpload(
        header=detection_pb2.VideoUploadHeader(
            filename=filename,
            sampling=detection_pb2.VideoSampling(fps=fps, every=every),
            idempotency_key=key,
            size_bytes=len(data),
        )
    )
    for start in range(0, len(data), CHUNK):
        yield detection_pb2.VideoUpload(chunk=data[start : start + CHUNK])


async def _submit(
    harness, user, data: bytes, *, filename="clip.mp4", fps=0.0, every=0, key=""
) -> detection_pb2.Job:
    return await harness.stub.SubmitVideoJob(
        _messages(data, filename=filename, fps=fps, every=every, key=key),
        metadata=harness.metadata(user),
        timeout=60,
    )


async def _get(harness, user, job_id: str) -> detection_pb2.Job:
    return await harness.stub.GetJob(
        detection_pb2.GetJobRequest(job_id=job_id), metadata=harness.metadata(user), timeout=30
    )


async def _wait(harness, user, job_id: str, *, within_s: float = 120) -> detection_pb2.Job:
    deadline = time.monotonic() + within_s
    while True:
        job = await _get(harness, user, job_id)
        if job.status in DONE:
            return job
        assert time.monotonic() < deadline, f"job still {job.status} after {within_s}s: {job}"
        await asyncio.sleep(0.1)


async def _frames(harness, user, job_id: str) -> list[detection_pb2.VideoFrame]:
    listed = await harness.stub.ListVideoFrames(
        detection_pb2.ListVideoFramesRequest(job_id=job_id, page=common_pb2.Page(limit=1000)),
        metadata=harness.metadata(user),
        timeout=30,
    )
    assert listed.total == len(listed.frames)
    return list(listed.frames)


async def _annotated(harness, user, job_id: str) -> bytes:
    call = harness.stub.GetAnnotatedVideo(
        detection_pb2.GetAnnotatedVideoRequest(job_id=job_id),
        metadata=harness.metadata(user),
        timeout=30,
    )
    chunks = [chunk async for chunk in call]
    assert {chunk.content_type for chunk in chunks} == {"video/mp4"}
    return b"".join(chunk.data for chunk in chunks)


async def _events(harness, job_id: str) -> list[tuple[str, int, int]]:
    """(event type, processed, total) of this job's outbox rows, by processed count."""
    payload = OUTBOX.c.payload
    async with harness.service.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(OUTBOX.c.event_type, OUTBOX.c.payload).where(
                (payload["jobProgress"]["jobId"].astext == job_id)
                | (payload["jobFinished"]["jobId"].astext == job_id)
            )
        )
    found = []
    for row in rows:
        body = row.payload.get("jobProgress") or row.payload["jobFinished"]
        found.append((row.event_type, int(body.get("processed", 0)), int(body.get("total", 0))))
    return sorted(found, key=lambda e: (e[1], e[0] != "job.progress"))


def _decoded_frames(data: bytes, tmp_path: Path) -> tuple[int, str, list[float]]:
    path = tmp_path / f"{uuid.uuid4().hex}.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(frame.time) for frame in container.decode(stream)]
        return len(times), stream.codec_context.name, times


def _classes(frame: detection_pb2.VideoFrame) -> set[str]:
    return {obj.class_name for obj in frame.objects}


# The container and codec, judged before decoding


def test_the_container_is_told_by_its_first_bytes_not_its_name(tmp_path):
    mp4 = make_video(tmp_path / "a.mp4", [(BUS, 2)])
    webm = make_video(tmp_path / "a.webm", [(BUS, 2)], codec="libvpx", container="webm")
    mov = make_video(tmp_path / "a.mov", [(BUS, 2)], container="mov")

    assert sniff_container(mp4.read_bytes()[:4096]) is VideoContainer.MP4
    assert sniff_container(webm.read_bytes()[:4096]) is VideoContainer.WEBM
    assert sniff_container(mov.read_bytes()[:4096]) is VideoContainer.MOV
    for data, named in (
        (BUS.read_bytes(), "a JPEG image"),
        (b"GIF89a" + bytes(100), "a GIF"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "AVI video"),
        (b"just some text, certainly not a video" * 10, "not a video"),
    ):
        with pytest.raises(UnsupportedMediaType, match=named):
            sniff_container(data[:4096])
    mkv = make_video(tmp_path / "a.mkv", [(BUS, 2)], container="matroska")
    with pytest.raises(UnsupportedMediaType, match="Matroska"):
        sniff_container(mkv.read_bytes()[:4096])


def test_a_supported_container_with_an_unsupported_codec_is_refused_by_name(tmp_path):
    mjpeg = make_video(
        tmp_path / "mjpeg.mov", [(BUS, 3)], codec="mjpeg", container="mov", pix_fmt="yuvj420p"
    )
    with pytest.raises(UnsupportedMediaType, match="codec mjpeg is not supported"):
        probe(mjpeg, VideoContainer.MOV, LIMITS, Sampling(fps=1))


def test_the_probe_reads_size_duration_and_frame_count_without_decoding(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", [(BUS, 25)], fps=10, width=320, height=240)

    found = probe(clip, VideoContainer.MP4, LIMITS, Sampling(every=10))

    assert (found.codec, found.width, found.height) == ("h264", 320, 240)
    assert (found.frame_count, found.duration_seconds, found.frame_rate) == (25, 2.5, 10.0)
    assert found.sampled_frames == 3  # frames 0, 10 and 20


def test_limits_and_truncation_are_refused_from_the_container(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", [(BUS, 30)], fps=10, width=320, height=240)
    short = VideoLimits(max_bytes=2**30, max_seconds=2, max_frame_pixels=10**8, max_fps=60)
    with pytest.raises(PayloadTooLarge, match=r"at most 2\.0 s"):
        probe(clip, VideoContainer.MP4, short, Sampling(fps=1))
    small_frames = VideoLimits(
        max_bytes=2**30, max_seconds=60, max_frame_pixels=320 * 200, max_fps=60
    )
    with pytest.raises(PayloadTooLarge, match="320x240"):
        probe(clip, VideoContainer.MP4, small_frames, Sampling(fps=1))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    with pytest.raises(InvalidArgument, match="corrupt or truncated"):
        probe(truncated, VideoContainer.MP4, LIMITS, Sampling(fps=1))


def test_fps_sampling_takes_the_first_frame_at_or_after_each_step():
    sampler = Sampler(Sampling(fps=2))
    times = [n / 10 for n in range(40)]  # 10 fps for 4 s

    taken = [n for n, t in enumerate(times) if sampler.take(n, t)]

    assert taken == [0, 5, 10, 15, 20, 25, 30, 35]
    every = Sampler(Sampling(every=7))
    assert [n for n in range(20) if every.take(n, n / 10)] == [0, 7, 14]


# Jobs through the gRPC API


async def test_a_video_job_detects_sampled_frames_at_their_timestamps(
    detection, user, bus_then_zidane, tmp_path
):
    submitted = await _submit(detection, user, bus_then_zidane, filename="street.mp4", fps=2)
    assert submitted.video.container == "mp4" and submitted.video.codec == "h264"
    assert (submitted.video.width, submitted.video.height) == (640, 480)
    assert (submitted.video.frame_count, submitted.video.duration_seconds) == (40, 4.0)
    assert submitted.video.sampled_frames == submitted.total == 8
    assert submitted.video.sampling.fps == 2 and submitted.video.filename == "street.mp4"

    job = await _wait(detection, user, submitted.id)

    assert job.status == detection_pb2.JOB_STATUS_COMPLETED, job
    assert (job.total, job.processed, job.failed) == (8, 8, 0)
    assert job.video.annotated_available
    frames = await _frames(detection, user, submitted.id)
    assert [f.frame_index for f in frames] == [0, 5, 10, 15, 20, 25, 30, 35]
    assert [f.timestamp_seconds for f in frames] == pytest.approx(
        [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    )
    for frame in frames:
        assert not frame.error
        if frame.timestamp_seconds < 2:
            assert "bus" in _classes(frame), frame
        else:
            assert "bus" not in _classes(frame) and "person" in _classes(frame), frame
        for obj in frame.objects:
            assert 0 <= obj.box.x1 < obj.box.x2 <= 640 and 0 <= obj.box.y1 < obj.box.y2 <= 480

    count, codec, times = _decoded_frames(await _annotated(detection, user, submitted.id), tmp_path)
    assert (count, codec) == (8, "h264")
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5], abs=0.002)

    events = await _events(detection, submitted.id)
    assert events[-1] == ("job.completed", 8, 8)
    progress = [event for event in events if event[0] == "job.progress"]
    assert progress and progress[-1][1] == 8
    assert [p[1] for p in progress] == sorted({p[1] for p in progress})


async def test_every_nth_frame_sampling(detection, user, bus_then_zidane):
    submitted = await _submit(detection, user, bus_then_zidane, every=10)
    assert submitted.total == 4 and submitted.video.sampling.every == 10

    job = await _wait(detection, user, submitted.id)

    assert job.status == detection_pb2.JOB_STATUS_COMPLETED
    frames = await _frames(detection, user, submitted.id)
    assert [(f.frame_index, round(f.timestamp_seconds, 3)) for f in frames] == [
        (0, 0.0),
        (10, 1.0),
        (20, 2.0),
        (30, 3.0),
    ]
    assert ["bus" in _classes(f) for f in frames] == [True, True, False, False]


@pytest.mark.parametrize(
    ("name", "codec", "container", "expected"),
    [
        ("clip.webm", "libvpx-vp9", "webm", ("webm", "vp9")),
        ("clip.webm", "libvpx", "webm", ("webm", "vp8")),
        ("clip.mov", "libx264", "mov", ("mov", "h264")),
        ("clip.mp4", "libx265", "mp4", ("mp4", "hevc")),
    ],
)
async def test_webm_mov_and_hevc_videos_run_too(
    detection, user, tmp_path, name, codec, container, expected
):
    clip = make_video(
        tmp_path / name, [(BUS, 10), (ZIDANE, 10)], fps=10, codec=codec, container=container
    )

    submitted = await _submit(detection, user, clip.read_bytes(), filename=name, every=10)

    assert (submitted.video.container, submitted.video.codec) == expected
    job = await _wait(detection, user, submitted.id)
    assert job.status == detection_pb2.JOB_STATUS_COMPLETED, job
    frames = await _frames(detection, user, submitted.id)
    assert [(f.frame_index, round(f.timestamp_seconds, 3)) for f in frames] == [(0, 0.0), (10, 1.0)]
    assert "bus" in _classes(frames[0]) and "bus" not in _classes(frames[1])
    count, codec_name, _ = _decoded_frames(
        await _annotated(detection, user, submitted.id), tmp_path
    )
    assert (count, codec_name) == (2, "h264")


async def _stored(harness, user: str) -> tuple[int, int]:
    """The user's jobs, and every file in storage (for everyone)."""
    counts = await harness.counts(user)
    return counts["jobs"], counts["files"]


@pytest.mark.parametrize(
    ("name", "make", "code", "message"),
    [
        (
            "notes.txt",
            lambda tmp: b"meeting notes, not a video\n" * 400,
            "unsupported_media_type",
            "not a video",
        ),
        ("photo.mp4", lambda tmp: BUS.read_bytes(), "unsupported_media_type", "JPEG image"),
        (
            "motion.mov",
            lambda tmp: make_video(
                tmp / "m.mov", [(BUS, 3)], codec="mjpeg", container="mov", pix_fmt="yuvj420p"
            ).read_bytes(),
            "unsupported_media_type",
            "codec mjpeg is not supported",
        ),
        (
            "cut.mp4",
            lambda tmp: make_video(tmp / "c.mp4", [(BUS, 30)]).read_bytes()[:20_000],
            "invalid_argument",
            "corrupt or truncated",
        ),
        ("empty.mp4", lambda tmp: b"", "invalid_argument", "empty"),
    ],
)
async def test_a_file_that_is_not_a_usable_video_is_refused_and_nothing_is_stored(
    detection, user, tmp_path, name, make, code, message
):
    before = await _stored(detection, user)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _submit(detection, user, make(tmp_path), filename=name)

    assert dict(caught.value.trailing_metadata())["error-code"] == code
    assert message in caught.value.details()
    assert await _stored(detection, user) == before


async def test_too_long_and_too_large_videos_are_refused_and_nothing_is_stored(
    make_harness, user, bus_then_zidane, tmp_path
):
    harness = await make_harness(MAX_VIDEO_SECONDS=3, MAX_VIDEO_BYTES=100_000, JOB_WORKERS=0)
    before = await _stored(harness, user)

    with pytest.raises(grpc.aio.AioRpcError) as too_large:
        await _submit(harness, user, bus_then_zidane)
    assert too_large.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(too_large.value.trailing_metadata())["error-code"] == "payload_too_large"
    assert "at most 97.7 KiB per video are accepted" in too_large.value.details()

    small = make_video(tmp_path / "long.mp4", [(BUS, 50)], fps=10, width=64, height=48)
    assert small.stat().st_size < 100_000
    with pytest.raises(grpc.aio.AioRpcError) as too_long:
        await _submit(harness, user, small.read_bytes())
    assert dict(too_long.value.trailing_metadata())["error-code"] == "payload_too_large"
    assert "5.0 s long; at most 3.0 s" in too_long.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as both:
        await _submit(harness, user, small.read_bytes(), fps=2, every=3)
    assert "fps or every, not both" in both.value.details()
    assert await _stored(harness, user) == before


async def test_another_users_video_job_is_not_found(detection, user, bus_then_zidane):
    submitted = await _submit(detection, user, bus_then_zidane, every=20)
    await _wait(detection, user, submitted.id)
    stranger = f"user-{uuid.uuid4()}"

    for call in (
        _get(detection, stranger, submitted.id),
        _frames(detection, stranger, submitted.id),
        _annotated(detection, stranger, submitted.id),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_same_idempotency_key_returns_the_first_video_job(
    detection, user, bus_then_zidane
):
    key = f"video-{uuid.uuid4().hex}"
    first = await _submit(detection, user, bus_then_zidane, every=20, key=key)
    again = await _submit(detection, user, bus_then_zidane, every=20, key=key)

    assert again.id == first.id
    assert (await detection.counts(user))["jobs"] == 1
    assert (await _wait(detection, user, first.id)).status == detection_pb2.JOB_STATUS_COMPLETED


@pytest.mark.slow  # a fault injected (a worker killed, Triton stopped): make test-slow
async def test_a_worker_killed_mid_video_is_replaced_and_every_frame_counts_once(
    detection, make_harness, user, tmp_path
):
    """The worker process dies (SIGKILL) with part of the frames committed; another consumer
    reclaims the job, detects only the missing frames, and writes the whole annotated video."""
    stream = f"detection:jobs:video-kill:{uuid.uuid4().hex[:8]}"
    submitter = await make_harness(JOB_STREAM=stream, JOB_WORKERS=0)
    settings = submitter.settings
    clip = make_video(tmp_path / "long.mp4", [(BUS, 30), (ZIDANE, 30)], fps=FPS)
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "TRITON_URL": settings.triton_url,
        "SERVED_MODEL_PATH": str(settings.served_model_path),
        "STORAGE_DIR": str(settings.objects_dir),
        "SERVICE_TOKEN_SECRET": settings.service_token_secret,
        "JOB_STREAM": stream,
        "JOB_WORKERS": "1",
        "JOB_CLAIM_IDLE_MS": "1000",
        # One frame at a time, so the job is surely unfinished when the worker dies.
        "VIDEO_FRAMES_IN_FLIGHT": "1",
        "DETECT_MAX_BATCH": "1",
        "RESULT_CACHE_TTL_SECONDS": "0",
        "DETECTION_GRPC_PORT": str(free_port()),
        "DETECTION_METRICS_PORT": str(free_port()),
        "LOG_JSON": "false",
        "PATH": "/usr/bin:/bin",
    }
    worker = ManagedProcess(
        "detection-video-worker",
        [str(Path(sys.executable).with_name("objectvision-detection")), "serve"],
        env=env,
        log_path=tmp_path / "worker.log",
    )
    worker.start()
    try:
        job = await _submit(submitter, user, clip.read_bytes(), every=3)
        assert job.total == 20
        deadline = time.monotonic() + 90
        while (await _get(submitter, user, job.id)).processed < 3:
            assert worker.running(), worker.log_tail()
            assert time.monotonic() < deadline, worker.log_tail()
            await asyncio.sleep(0.02)
        worker.kill()
    finally:
        worker.kill()
    at_death = await _get(submitter, user, job.id)
    assert 3 <= at_death.processed < 20
    assert not at_death.video.annotated_available

    await make_harness(JOB_STREAM=stream, JOB_WORKERS=1, JOB_CLAIM_IDLE_MS=1000)
    done = await _wait(submitter, user, job.id)

    assert done.status == detection_pb2.JOB_STATUS_COMPLETED
    assert (done.total, done.processed, done.failed) == (20, 20, 0)
    frames = await _frames(submitter, user, job.id)
    assert [f.frame_index for f in frames] == list(range(0, 60, 3))
    count, _, _ = _decoded_frames(await _annotated(submitter, user, job.id), tmp_path)
    assert count == 20
    events = await _events(submitter, job.id)
    assert [e for e in events if e[0] != "job.progress"] == [("job.completed", 20, 20)]
    progress = [e[1] for e in events if e[0] == "job.progress"]
    assert progress == sorted(set(progress)) and progress[-1] == 20
    async with submitter.service.engine.connect() as conn:
        keys = (
            await conn.execute(
                sa.select(video_jobs.c.storage_key, video_jobs.c.annotated_key).where(
                    video_jobs.c.job_id == uuid.UUID(job.id)
                )
            )
        ).one()
        rows = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(video_frames)
            .where(video_frames.c.job_id == uuid.UUID(job.id))
        )
    assert rows == 20
    assert all((settings.objects_dir / key[:2] / key).is_file() for key in keys)


async def test_the_orphan_sweep_keeps_a_video_jobs_files_and_removes_scratch_leftovers(
    detection, user, bus_then_zidane
):
    """The upload and the annotated video are referenced by the job; a scratch file a crash
    left behind (an upload cut off, an annotated video never finished) is not."""
    submitted = await _submit(detection, user, bus_then_zidane, every=20)
    assert (await _wait(detection, user, submitted.id)).video.annotated_available
    storage = detection.service.orphans._storage
    leftover = storage.scratch_path()
    leftover.write_bytes(b"half an upload")
    async with detection.service.engine.connect() as conn:
        keys = (
            await conn.execute(
                sa.select(video_jobs.c.storage_key, video_jobs.c.annotated_key).where(
                    video_jobs.c.job_id == uuid.UUID(submitted.id)
                )
            )
        ).one()
    past = time.time() - 10 * 3600
    for path in (leftover, *(storage.root / key[:2] / key for key in keys)):
        os.utime(path, (past, past))

    await detection.service.orphans.sweep()

    assert not leftover.exists()
    assert all((storage.root / key[:2] / key).is_file() for key in keys)
    assert len(await _annotated(detection, user, submitted.id)) > 0


@pytest.mark.slow  # a fault injected (a worker killed, Triton stopped): make test-slow
async def test_a_video_job_waits_out_a_triton_outage_and_completes(
    make_harness, user, bus_then_zidane, served_model, tmp_path
):
    """Triton gone is not the video's fault: no frame fails, the job waits and completes.
    (Submitting needs Triton, which says whether the model is ready: the job is submitted
    first, and its worker starts once Triton is down.)"""
    stream = f"detection:jobs:video-outage:{uuid.uuid4().hex[:8]}"
    own_triton = LocalTriton(tmp_path / "triton", served_model=served_model)
    await asyncio.to_thread(own_triton.start)
    try:
        submitter = await make_harness(
            TRITON_URL=own_triton.grpc_url, JOB_STREAM=stream, JOB_WORKERS=0
        )
        job = await _submit(submitter, user, bus_then_zidane, every=10)
        await asyncio.to_thread(own_triton.stop)
        await make_harness(TRITON_URL=own_triton.grpc_url, JOB_STREAM=stream, JOB_WORKERS=1)
        await asyncio.sleep(3)
        waiting = await _get(submitter, user, job.id)
        assert waiting.status == detection_pb2.JOB_STATUS_PROCESSING
        assert (waiting.processed, waiting.failed) == (0, 0)

        await asyncio.to_thread(own_triton.start)
        done = await _wait(submitter, user, job.id)
    finally:
        await asyncio.to_thread(own_triton.stop)

    assert done.status == detection_pb2.JOB_STATUS_COMPLETED
    assert (done.total, done.processed, done.failed) == (4, 4, 0)
    frames = await _frames(submitter, user, job.id)
    assert ["bus" in _classes(f) for f in frames] == [True, True, False, False]
