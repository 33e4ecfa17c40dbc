"""The whole system, started once for the end-to-end suite, on free ports."""

import asyncio
import json
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from auth_service.config import (
    ARGON2_MIN_MEMORY_COST_KIB,
    ARGON2_MIN_PARALLELISM,
    ARGON2_MIN_TIME_COST,
)
from objectvision_client import Client
from objectvision_common.db import sync_url
from objectvision_devstack.api_users import PASSWORD, Account, fresh_network
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.mail import Mailbox
from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import Infrastructure, served_model_path
from objectvision_devstack.stack import Stack, StackConfig
from objectvision_devstack.triton import LocalTriton
from objectvision_devstack.videos import panned, write_video

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"
# How long a test waits for a job of a few frames to finish through the whole stack.
JOB_WITHIN_SECONDS = 120.0
# The counting tests' scene (lines, ADR 0039; zones, ADR 0042): bus.jpg panned PAN_STEP
# pixels right a frame, PANNED_FRAMES frames of PANNED_SIZE (width, height).
PANNED_FRAMES = 8
PAN_STEP = 6
PANNED_SIZE = (640, 480)
# The queued stack's WS_DETECT_IDLE_SECONDS: a live detection stream with no frame for this
# long is ended.
LIVE_IDLE_SECONDS = 10


def _own_database(server_url: str, name: str) -> str:
    """The URL of database `name` on the same server, created if missing.

    The service suites run before this one against the shared database and Redis and leave
    events in the outboxes and streams; a stack started on top of them would first work
    through that backlog. The end-to-end stack gets a database and a Redis db of its own.
    """
    url = make_url(server_url)
    admin = create_engine(sync_url(url.set(database="postgres").render_as_string(False)))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        )
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _own_redis_db(redis_url: str, db: int) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def stack_admin_email() -> str:
    """The one address the stack's ADMIN_EMAILS names, fresh each session (the stack's
    database outlives it): whoever verifies it becomes an admin (ADR 0029)."""
    return f"stack-admin-{uuid.uuid4().hex}@example.com"


# Argon2id at the least cost auth-service accepts (its floor, OWASP's minimum): these tests sign
# up and log in hundreds of accounts, each hash about 0.3 s at the default cost on 2 cores.
# That the default is stronger, and that a lower cost is refused, is auth-service's own test.
CHEAPEST_PASSWORD_HASHING = {
    "ARGON2_TIME_COST": str(ARGON2_MIN_TIME_COST),
    "ARGON2_MEMORY_COST_KIB": str(ARGON2_MIN_MEMORY_COST_KIB),
    "ARGON2_PARALLELISM": str(ARGON2_MIN_PARALLELISM),
}


@pytest.fixture(scope="session")
def stack(
    infrastructure: Infrastructure,
    triton: LocalTriton,
    tmp_path_factory: pytest.TempPathFactory,
    stack_admin_email: str,
) -> Iterator[Stack]:
    running = Stack(
        StackConfig(
            data_dir=tmp_path_factory.mktemp("stack"),
            gateway_port=free_port(),
            database_url=_own_database(infrastructure.database_url, "objectvision_e2e"),
            redis_url=_own_redis_db(infrastructure.redis_url, 1),
            triton_url=triton.grpc_url,
            served_model=served_model_path(),
            extra_env={
                **CHEAPEST_PASSWORD_HASHING,
                "LOG_LEVEL": "INFO",
                "WEBHOOK_ALLOW_PRIVATE": "true",
                # Images by URL come from servers the tests run on 127.0.0.1.
                "IMAGE_URL_ALLOW_PRIVATE": "true",
                # Low enough that test_detect_by_url.py reaches it with one account.
                "RATE_LIMIT_IMAGE_URLS": "30/3600",
                "TRUST_PROXY_HEADERS": "true",
                # Small video limits, so test_video_api.py can exceed them with tiny files.
                "MAX_VIDEO_BYTES": str(2 * 1024 * 1024),
                "MAX_VIDEO_SECONDS": "12",
                "ADMIN_EMAILS": stack_admin_email,
            },
        )
    )
    with running.running():
        yield running


@pytest.fixture
async def gateway_client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def panned_frames() -> list[np.ndarray]:
    """bus.jpg moving PAN_STEP pixels right a frame, PANNED_FRAMES frames of PANNED_SIZE."""
    width, height = PANNED_SIZE
    return panned(
        SHARED_IMAGES / "bus.jpg", PANNED_FRAMES, step=PAN_STEP, width=width, height=height
    )


@pytest.fixture(scope="module")
def panned_bus(panned_frames: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The frames at 10 fps, H.264 in MP4."""
    path = tmp_path_factory.mktemp("counting") / "panned-bus.mp4"
    return write_video(path, panned_frames, fps=10).read_bytes()


@pytest.fixture(scope="module")
def bus_passes_x(stack: Stack, panned_frames: list[np.ndarray]) -> int:
    """Where the bus's box centre (and so the bottom centre it stands on) is halfway through
    the frames it is tracked in (from the second frame on, ADR 0038): found by detecting the
    second frame as an image, then moved on by half the distance it travels until the last
    frame. A line across the picture there is crossed by the bus's centre, and only once; a
    zone from there to the right edge is entered by the bus, and only once."""
    encoded, jpeg = cv2.imencode(".jpg", panned_frames[1])
    assert encoded
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        address = f"counting-probe-{uuid.uuid4().hex}@example.com"
        client.signup(address, PASSWORD, "Counting Probe")
        client.login(address, PASSWORD)
        result = client.detect_image(("frame-1.jpg", jpeg.tobytes()))
    (bus,) = [obj for obj in result.objects if obj.class_name == "bus"]
    centre = (bus.bbox.x1 + bus.bbox.x2) / 2
    return round(centre + PAN_STEP * (PANNED_FRAMES - 2) / 2)


async def _upload_video(
    client: httpx.AsyncClient, account: Account, video: bytes, form: dict[str, str]
) -> httpx.Response:
    """POST `video` as bus.mp4 with the form fields `form`, as `account`."""
    return await client.post(
        "/api/v1/detect/video",
        files={"file": ("bus.mp4", video, "video/mp4")},
        data=form,
        headers=account.headers,
        timeout=120,
    )


async def finished_video_job(
    client: httpx.AsyncClient,
    account: Account,
    video: bytes,
    *,
    frames: int,
    track: bool = False,
    lines: list[dict[str, Any]] | None = None,
    zones: list[dict[str, Any]] | None = None,
    within_seconds: float = JOB_WITHIN_SECONDS,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Submit `video` as bus.mp4 sampled at every frame, `track`ed or not and counting `lines`
    and `zones` if given; poll its job every 0.25 s until it completes with all `frames`
    processed (the test fails if it fails or is still running after `within_seconds`). The
    finished job and its frames, checked to be all of them in order."""
    form = {"every": "1"}
    if track:
        form["track"] = "true"
    if lines is not None:
        form["lines"] = json.dumps(lines)
    if zones is not None:
        form["zones"] = json.dumps(zones)
    submitted = await _upload_video(client, account, video, form)
    assert submitted.status_code == 202, submitted.text
    job_url = f"/api/v1/detect/jobs/{submitted.json()['job_id']}"
    deadline = time.monotonic() + within_seconds
    while True:
        response = await client.get(job_url, headers=account.headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("completed", "failed"):
            break
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        await asyncio.sleep(0.25)
    assert (job["status"], job["processed"]) == ("completed", frames), job
    listed = await client.get(f"{job_url}/frames", headers=account.headers)
    assert listed.status_code == 200, listed.text
    found = listed.json()["frames"]
    assert [frame["frame_index"] for frame in found] == list(range(frames))
    return job, found


async def refused_video_upload(
    client: httpx.AsyncClient, account: Account, video: bytes, form: dict[str, str]
) -> dict[str, Any]:
    """Submit `video` as bus.mp4 with `form`, which the API must refuse with 422 once the
    video is probed, making no job: the error it gives."""
    response = await _upload_video(client, account, video, form)
    assert response.status_code == 422, response.text
    jobs = await client.get("/api/v1/detect/jobs", headers=account.headers)
    assert jobs.json()["total"] == 0, "a refused video makes no job"
    error: dict[str, Any] = response.json()["error"]
    return error


def tracked_video_command(
    stack: Stack, address: str, video: bytes, tmp_path: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """`objectvision detect-video` of `video` sampled at every frame, tracked, with `options`,
    waited for: as `address` (whose password is PASSWORD), logged in first."""
    clip = tmp_path / "bus.mp4"
    clip.write_bytes(video)
    objectvision = CommandLine(stack.gateway_url, tmp_path / "config")
    objectvision.run("login", "--email", address, "--password", PASSWORD)
    return objectvision.run(
        "detect-video", str(clip), "--every", "1", "--track", *options, "--wait"
    )


def detect_video_usage_error(tmp_path: Path, *options: str) -> str:
    """What `objectvision detect-video` with `options` says on stderr as it refuses them as a
    usage error (exit 2), before anything is read or sent: its file is named like a video but
    is none, and its server is a closed port."""
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a video")
    cli = CommandLine("http://127.0.0.1:9", tmp_path / "config")
    return cli.run("detect-video", str(clip), *options, expect=2).stderr


@pytest.fixture(scope="session")
def own_stack(
    infrastructure: Infrastructure,
    triton: LocalTriton,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., Stack]:
    """Build (not start) a whole stack of its own: its database, Redis db and extra settings,
    for a module that must configure the services differently from the shared `stack`; with
    `own_triton`, a Triton of its own too (`stack.triton`), for tests that unload and load
    models through Triton's model control."""

    def build(
        *, database: str, redis_db: int, extra_env: dict[str, str], own_triton: bool = False
    ) -> Stack:
        return Stack(
            StackConfig(
                data_dir=tmp_path_factory.mktemp(database),
                gateway_port=free_port(),
                database_url=_own_database(infrastructure.database_url, database),
                redis_url=_own_redis_db(infrastructure.redis_url, redis_db),
                triton_url=None if own_triton else triton.grpc_url,
                served_model=served_model_path(),
                extra_env={**CHEAPEST_PASSWORD_HASHING, "LOG_LEVEL": "INFO", **extra_env},
            )
        )

    return build


@pytest.fixture(scope="session")
def cached_stack(own_stack: Callable[..., Stack]) -> Iterator[Stack]:
    """A stack with the result cache on (the shared one runs without it, so that other tests
    reach inference): for the tests of what a user sees of the cache. Started once for the
    session (two modules use it; a start costs 10-15 s on 2 cores)."""
    stack = own_stack(
        database="objectvision_result_cache",
        redis_db=4,
        extra_env={"RESULT_CACHE_TTL_SECONDS": "3600"},
    )
    with stack.running():
        yield stack


@pytest.fixture(scope="session")
def queued_stack(own_stack: Callable[..., Stack]) -> Iterator[Stack]:
    """A stack whose detection-service runs no job workers (JOB_WORKERS=0): every job stays
    pending until it is cancelled, so what a job is when it is cancelled is known, not raced
    (tests/test_jobs_api.py, and the console's Cancel button in test_console_browser.py).
    Started once for the session, like `cached_stack`."""
    stack = own_stack(
        database="objectvision_jobs",
        redis_db=6,
        extra_env={
            "JOB_WORKERS": "0",
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "TRUST_PROXY_HEADERS": "true",
            # Low, so test_jobs_api.py reaches it with jobs that never end here.
            "WS_MAX_STREAMS_PER_ACCOUNT": "3",
            # Low, so test_jobs_api.py reaches it with jobs that never end here.
            "MAX_UNFINISHED_JOBS_PER_USER": "4",
            # So that test_jobs_api.py sees a revoked credential close a stream quickly.
            "WS_CREDENTIAL_RECHECK_SECONDS": "1",
            # So that test_jobs_api.py sees an idle live detection stream ended, yet long
            # enough for its other live stream's steps between frames.
            "WS_DETECT_IDLE_SECONDS": str(LIVE_IDLE_SECONDS),
        },
    )
    with stack.running():
        yield stack


@pytest.fixture
def unique_bus_jpg() -> bytes:
    """bus.jpg with a JPEG comment segment of fresh bytes: an image no other test uploads,
    so a result-cache hit can only come from the test's own earlier upload."""
    comment = uuid.uuid4().hex.encode()
    original = (SHARED_IMAGES / "bus.jpg").read_bytes()
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return original[:2] + segment + original[2:]


@pytest.fixture
def mailbox(stack: Stack) -> Mailbox:
    """The shared stack's mail sink: every user's inbox."""
    return Mailbox(stack.mail_dir)


@dataclass(frozen=True)
class ReceivedPost:
    headers: dict[str, str]
    body: bytes
    # The status the receiver answered with.
    answered: int = 200

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class HookReceiver:
    """A real HTTP server on 127.0.0.1 standing where a webhook's receiver would: it answers
    each POST with the next status of `script`, then 200 (a test that sets the script sees
    failed deliveries retried), and keeps each request (header names in lower case)."""

    url: str = ""
    script: list[int] = field(default_factory=list)
    posts: list[ReceivedPost] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = self.script.pop(0) if self.script else 200
            self.posts.append(ReceivedPost(headers, body, status))
            return status

    def received(self) -> list[ReceivedPost]:
        with self.lock:
            return list(self.posts)


@pytest.fixture
def hook_receiver() -> Iterator[HookReceiver]:
    receiver = HookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests report what matters."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    # Shutting down waits out one poll: 0.5 s by default, after every test.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join()
