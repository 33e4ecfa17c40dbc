"""The detection service in process on a free port, against real PostgreSQL, Redis and Triton.

PostgreSQL, Redis (`infrastructure`) and Triton serving the prepared model on the CPU
(`triton`) are the shared session fixtures of objectvision_devstack.pytest_plugin. Every test
works as a fresh user, so tests share the database without seeing each other's rows.
"""

import asyncio
import contextlib
import csv
import io
import os
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import grpc
import numpy as np
import psutil
import pytest
import sqlalchemy as sa
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from detection_service.config import DetectionSettings
from detection_service.history.models import detections
from detection_service.images.models import images
from detection_service.jobs.models import jobs
from detection_service.outbox import OUTBOX
from detection_service.server import DetectionService, runner
from objectvision.v1 import common_pb2, detection_pb2, detection_pb2_grpc, notification_pb2
from objectvision_common.identity import principal_metadata
from objectvision_common.outbox import stream_fields
from objectvision_common.runner import ServiceApp, service_app
from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import Infrastructure, served_model_path
from objectvision_devstack.triton import REPOSITORY_ROOT, LocalTriton
from objectvision_devstack.videos import panned, write_video

# The shared test images (bus.jpg, zidane.jpg, coco8), as the inference tests find them.
IMAGES = (
    Path(os.environ.get("OBJECTVISION_SHARED_DIR", REPOSITORY_ROOT.parent / "shared")) / "images"
)
SECRET = "detection-tests-secret"


@pytest.fixture(scope="session")
def served_model() -> Path:
    """The served graph the shared `triton` fixture serves (written by `make model`)."""
    return served_model_path().resolve()


def service_settings(
    infrastructure: Infrastructure,
    *,
    triton_url: str,
    served_model: Path,
    storage_dir: Path,
    **overrides: object,
) -> DetectionSettings:
    values: dict[str, object] = {
        "DATABASE_URL": infrastructure.database_url,
        "REDIS_URL": infrastructure.redis_url,
        "TRITON_URL": triton_url,
        "SERVED_MODEL_PATH": str(served_model),
        "STORAGE_DIR": str(storage_dir),
        "SERVICE_TOKEN_SECRET": SECRET,
        "BIND_HOST": "127.0.0.1",
        "JOB_STREAM": f"detection:jobs:test:{uuid.uuid4().hex[:8]}",
        "EVENTS_STREAM": f"objectvision:events:test:{uuid.uuid4().hex[:8]}",
        "JOB_CLAIM_IDLE_MS": 2000,
        "GRPC_SHUTDOWN_GRACE_SECONDS": 1,
        # Tests that count inferences or stop Triton need every call to reach it; the cache
        # has its own tests (test_result_cache.py).
        "RESULT_CACHE_TTL_SECONDS": 0,
    }
    values.update(overrides)
    return DetectionSettings(_env_file=None, **values)


@dataclass
class Harness:
    """The service, its gRPC server and a client; helpers to act as a user and count rows."""

    service: DetectionService
    app: ServiceApp
    channel: grpc.aio.Channel
    stub: detection_pb2_grpc.DetectionServiceStub

    @property
    def settings(self) -> DetectionSettings:
        return self.service.settings

    @staticmethod
    def metadata(user_id: str) -> tuple[tuple[str, str], ...]:
        return principal_metadata(
            common_pb2.Principal(user_id=user_id, auth_method="jwt"), secret=SECRET
        )

    async def counts(self, user_id: str) -> dict[str, int]:
        """What a user has stored, and how many objects are on disk for everyone."""
        async with self.service.engine.connect() as conn:
            found = {
                table.name: await conn.scalar(
                    sa.select(sa.func.count()).select_from(table).where(table.c.user_id == user_id)
                )
                for table in (detections, images, jobs)
            }
        root = self.settings.objects_dir
        found["files"] = sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0
        return found

    async def stop(self) -> None:
        await self.channel.close()
        await self.app.stop()


async def start_harness(settings: DetectionSettings) -> Harness:
    service = await DetectionService.create(settings, registry=CollectorRegistry())
    any_port = settings.model_copy(update={"grpc_port": 0, "metrics_port": 0})
    app = service_app(any_port, service.parts())
    port = await app.start()
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    )
    return Harness(service, app, channel, detection_pb2_grpc.DetectionServiceStub(channel))


# The bus panning right: PAN_FRAMES frames, each PAN_STEP_PX further (tracking and counting).
PAN_FRAMES = 8
PAN_STEP_PX = 6


def panned_jpegs() -> list[bytes]:
    """The panned bus as the JPEG frames a stream client would send."""
    shots = panned(IMAGES / "bus.jpg", PAN_FRAMES, step=PAN_STEP_PX)
    return [cv2.imencode(".jpg", shot)[1].tobytes() for shot in shots]


@pytest.fixture(scope="module")
def panned_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The panned bus as an MP4 upload, at 10 frames a second."""
    path = tmp_path_factory.mktemp("videos") / "pan.mp4"
    shots = panned(IMAGES / "bus.jpg", PAN_FRAMES, step=PAN_STEP_PX)
    return write_video(path, shots, fps=10).read_bytes()


async def stream_refusal(
    harness: Harness, user: str, first: detection_pb2.Frame
) -> tuple[grpc.StatusCode, str]:
    """The status and message a DetectStream ends with when its first frame is refused.

    The frame is written on its own and the call's own status read: a refusal can end the
    call while the client is still writing, and gRPC then fails the write itself ("Internal
    error from Core", a client-side INTERNAL) in place of the status the server sent."""
    call = harness.stub.DetectStream(metadata=harness.metadata(user), timeout=60)
    with contextlib.suppress(grpc.aio.AioRpcError, grpc.aio.UsageError):
        await call.write(first)
        await call.done_writing()
    return await call.code(), await call.details() or ""


async def detect_stream(
    harness: Harness,
    user: str,
    frames: Sequence[bytes],
    *,
    track: bool,
    lines: Sequence[detection_pb2.CountingLine] = (),
    zones: Sequence[detection_pb2.CountingZone] = (),
) -> list[detection_pb2.FrameDetections]:
    """Every answer of one DetectStream of `frames` at 10 frames a second, the first frame
    asking for tracking and the lines and zones, as the contract reads them from it."""

    async def send() -> AsyncIterator[detection_pb2.Frame]:
        for n, data in enumerate(frames):
            first = n == 0
            yield detection_pb2.Frame(
                sequence=n,
                image=detection_pb2.ImageInput(data=data, filename=f"pan-{n}.jpg"),
                track=track and first,
                frame_rate=10 if first else 0,
                lines=lines if first else (),
                zones=zones if first else (),
            )

    return [
        reply
        async for reply in harness.stub.DetectStream(
            send(), metadata=harness.metadata(user), timeout=120
        )
    ]


async def video_frames_of(
    harness: Harness, user: str, job_id: str
) -> list[detection_pb2.VideoFrame]:
    """The first 100 committed frames of a video job, in order."""
    listed = await harness.stub.ListVideoFrames(
        detection_pb2.ListVideoFramesRequest(job_id=job_id, page=common_pb2.Page(limit=100)),
        metadata=harness.metadata(user),
        timeout=30,
    )
    return list(listed.frames)


async def submit_video_job(
    harness: Harness,
    user: str,
    data: bytes,
    *,
    track: bool,
    lines: Sequence[detection_pb2.CountingLine] = (),
    zones: Sequence[detection_pb2.CountingZone] = (),
    redact: Sequence[str] = (),
) -> detection_pb2.Job:
    """Upload `data` as pan.mp4 in one chunk, sampled at every frame (as tracking wants),
    `track`ed or not, counting `lines` and `zones` and pixelating the `redact` classes if
    any: the submitted job, or the refusal raised."""

    async def messages() -> AsyncIterator[detection_pb2.VideoUpload]:
        yield detection_pb2.VideoUpload(
            header=detection_pb2.VideoUploadHeader(
                filename="pan.mp4",
                sampling=detection_pb2.VideoSampling(every=1),
                size_bytes=len(data),
                track=track,
                lines=lines,
                zones=zones,
                redact=redact,
            )
        )
        yield detection_pb2.VideoUpload(chunk=data)

    return await harness.stub.SubmitVideoJob(
        messages(), metadata=harness.metadata(user), timeout=60
    )


async def final_event(harness: Harness, job_id: str) -> notification_pb2.JobFinished:
    """The job's one final event (job.completed) as staged in the outbox: what the webhook,
    the WebSocket and the report email are made from."""
    async with harness.service.engine.connect() as conn:
        payload = await conn.scalar(
            sa.select(OUTBOX.c.payload).where(
                OUTBOX.c.event_type == "job.completed",
                OUTBOX.c.payload["jobFinished"]["jobId"].astext == job_id,
            )
        )
    return json_format.ParseDict(payload["jobFinished"], notification_pb2.JobFinished())


async def csv_export(harness: Harness, user: str, **request: object) -> list[dict[str, str]]:
    """ExportDetections as CSV (a job's with `job_id`, else the filtered history's), read
    back as one dict per object row."""
    chunks = harness.stub.ExportDetections(
        detection_pb2.ExportDetectionsRequest(format=detection_pb2.EXPORT_FORMAT_CSV, **request),
        metadata=harness.metadata(user),
        timeout=30,
    )
    body = b"".join([chunk.data async for chunk in chunks])
    return list(csv.DictReader(io.StringIO(body.decode())))


async def finished_job(harness: Harness, user: str, job_id: str) -> detection_pb2.Job:
    """The job once it has completed or failed, polled every 0.1 s; fails the test if it is
    still running after 120 s."""
    deadline = time.monotonic() + 120
    while True:
        job = await harness.stub.GetJob(
            detection_pb2.GetJobRequest(job_id=job_id), metadata=harness.metadata(user), timeout=30
        )
        if job.status in (detection_pb2.JOB_STATUS_COMPLETED, detection_pb2.JOB_STATUS_FAILED):
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)


@pytest.fixture(scope="session")
def migrated(infrastructure: Infrastructure) -> Infrastructure:
    settings = DetectionSettings(_env_file=None, DATABASE_URL=infrastructure.database_url)
    runner().migrate(settings)
    return infrastructure


@pytest.fixture(scope="session")
async def detection(
    migrated: Infrastructure,
    triton: LocalTriton,
    served_model: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Harness]:
    settings = service_settings(
        migrated,
        triton_url=triton.grpc_url,
        served_model=served_model,
        storage_dir=tmp_path_factory.mktemp("objects"),
    )
    harness = await start_harness(settings)
    try:
        yield harness
    finally:
        await harness.stop()


@pytest.fixture
async def make_harness(
    migrated: Infrastructure, triton: LocalTriton, served_model: Path, detection: Harness
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Extra service instances (own job stream unless given), stopped after the test."""
    started: list[Harness] = []

    async def make(**overrides: object) -> Harness:
        settings = service_settings(
            migrated,
            triton_url=triton.grpc_url,
            served_model=served_model,
            storage_dir=detection.settings.objects_dir,
            **overrides,
        )
        started.append(await start_harness(settings))
        return started[-1]

    yield make
    for harness in reversed(started):
        await harness.stop()


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4()}"


@pytest.fixture(scope="session")
def bus_jpg() -> bytes:
    return (IMAGES / "bus.jpg").read_bytes()


@pytest.fixture(scope="session")
def zidane_jpg() -> bytes:
    return (IMAGES / "zidane.jpg").read_bytes()


@pytest.fixture(scope="session")
def coco8() -> list[tuple[str, bytes, list[tuple[int, float, float, float, float]]]]:
    """(name, JPEG bytes, labels as class, cx, cy, w, h normalised) for the 8 COCO images."""
    found = []
    for image in sorted((IMAGES / "coco8" / "images").glob("*/*.jpg")):
        label_file = IMAGES / "coco8" / "labels" / image.parent.name / f"{image.stem}.txt"
        labels = [
            (int(parts[0]), *(float(v) for v in parts[1:5]))
            for parts in (line.split() for line in label_file.read_text().splitlines())
            if parts
        ]
        found.append((image.name, image.read_bytes(), labels))
    return found


def png(width: int, height: int, *, idat: bytes | None = None) -> bytes:
    """An 8-bit greyscale PNG; all-black rows unless `idat` gives the compressed data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    if idat is None:
        compressor = zlib.compressobj(9)
        row = bytes(width + 1)
        idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def make_png() -> Callable[..., bytes]:
    return png


@pytest.fixture(scope="session")
def png_bomb() -> bytes:
    """~140 KB on the wire, 12000 x 12000 = 144 M pixels once decoded."""
    return png(12_000, 12_000)


@dataclass
class ServiceProcess:
    """The real `objectvision-detection` command running against the test infrastructure."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log: Path

    def serving_processes(self) -> list[psutil.Process]:
        """The spawned servers (DETECTION_SERVING_PROCESSES), not multiprocessing's resource
        tracker."""
        return [
            child
            for child in psutil.Process(self.process.pid).children()
            if "spawn_main" in " ".join(child.cmdline())
        ]


def handled_detect_calls(metrics_text: str) -> float:
    """Detect calls answered, summed over every status, from a /metrics page."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith("grpc_server_handled_total") and 'method="Detect"' in line
    )


@contextlib.contextmanager
def launched_service(
    infrastructure: Infrastructure,
    *,
    triton_url: str,
    served_model: Path,
    workdir: Path,
    secret: str,
    server_module: str = "detection_service.server",
    **env: str,
) -> Iterator[ServiceProcess]:
    """Start the service as its console script does (`server_module`'s main: the full service
    or the realtime role), wait until it reports SERVING, stop it (and any serving process it
    spawned) afterwards."""
    port, metrics_port = free_port(), free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": infrastructure.database_url,
        "REDIS_URL": infrastructure.redis_url,
        "TRITON_URL": triton_url,
        "SERVED_MODEL_PATH": str(served_model),
        "STORAGE_DIR": str(workdir / "objects"),
        "SERVICE_TOKEN_SECRET": secret,
        "BIND_HOST": "127.0.0.1",
        "DETECTION_GRPC_PORT": str(port),
        "DETECTION_METRICS_PORT": str(metrics_port),
        "JOB_STREAM": f"detection:jobs:test:{port}",
        "EVENTS_STREAM": f"objectvision:events:test:{port}",
        "JOB_CLAIM_IDLE_MS": "2000",
        "GRPC_SHUTDOWN_GRACE_SECONDS": "1",
        "RESULT_CACHE_TTL_SECONDS": "0",
        **env,
    }
    command = [sys.executable, "-c", f"from {server_module} import main; main()"]
    log_path = workdir / "detection.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    service = ServiceProcess(process, port, metrics_port, log_path)
    try:
        _wait_serving(service)
        yield service
    finally:
        if process.poll() is None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
        for child in psutil.Process().children(recursive=True):
            # A child that has ended meanwhile (or that nobody reaped yet) is no leftover.
            with contextlib.suppress(psutil.NoSuchProcess):
                if "multiprocessing" in " ".join(child.cmdline()):
                    child.kill()
        if process.poll() is None:
            process.kill()


@pytest.fixture
def launch_service(
    migrated: Infrastructure, triton: LocalTriton, served_model: Path, tmp_path: Path
) -> Callable[..., contextlib.AbstractContextManager[ServiceProcess]]:
    """``with launch_service(secret=..., **env) as service:`` runs the real command
    (``server_module="detection_service.realtime.server"``: the realtime role's)."""

    def launch(
        *, secret: str, server_module: str = "detection_service.server", **env: str
    ) -> contextlib.AbstractContextManager[ServiceProcess]:
        return launched_service(
            migrated,
            triton_url=triton.grpc_url,
            served_model=served_model,
            workdir=tmp_path,
            secret=secret,
            server_module=server_module,
            **env,
        )

    return launch


def _wait_serving(service: ServiceProcess) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"the service exited: {service.log.read_text()[-3000:]}")
        with grpc.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
        time.sleep(0.5)
    raise AssertionError("the service never answered its health check")


# How long the events consumer may take to handle an announced event (an erasure's included).
HANDLED_WITHIN_SECONDS = 120.0


def _entry_key(entry_id: str) -> tuple[int, int]:
    milliseconds, sequence = entry_id.split("-")
    return int(milliseconds), int(sequence)


async def announce_event(harness: Harness, event: notification_pb2.Event) -> None:
    """Append the event to the service's events stream, as auth-service's relay does, and wait
    until the service's group has acknowledged it: its handling has committed then."""
    redis = harness.service.redis
    stream = harness.settings.events_stream
    group = harness.settings.detection_events_consumer_group
    entry = await redis.xadd(
        stream, stream_fields(event.id, event.type, json_format.MessageToDict(event))
    )
    deadline = time.monotonic() + HANDLED_WITHIN_SECONDS
    while True:
        groups = {info["name"]: info for info in await redis.xinfo_groups(stream)}
        info = groups.get(group)
        if (
            info is not None
            and int(info["pending"]) == 0
            and _entry_key(info["last-delivered-id"]) >= _entry_key(entry)
        ):
            return
        assert time.monotonic() < deadline, f"{event.type} was not acknowledged"
        await asyncio.sleep(0.05)


# bus.jpg shrunk to 0.4 in a grey 4K frame: its people are 60 to 90 pixels tall there, about
# 15 once the frame is letterboxed to 640, and 60 to 90 again in a 640-pixel tile.
FRAME = (3840, 2160)
SCALE = 0.4
PLACED_AT = (1920, 720)


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


@pytest.fixture(scope="module")
def small_bus(bus_jpg: bytes) -> np.ndarray:
    bus = cv2.imdecode(np.frombuffer(bus_jpg, np.uint8), cv2.IMREAD_COLOR)
    return cv2.resize(bus, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def bus_in_a_4k_frame(small_bus: np.ndarray) -> bytes:
    frame = np.full((FRAME[1], FRAME[0], 3), 114, np.uint8)
    x, y = PLACED_AT
    frame[y : y + small_bus.shape[0], x : x + small_bus.shape[1]] = small_bus
    return jpeg(frame)
