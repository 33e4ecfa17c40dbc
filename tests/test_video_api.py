"""Video jobs end to end through the gateway (issue 18, part 2; ADR 0016), every part real.

Issue "Video files as async jobs", done when:
1. an uploaded MP4 becomes a job whose per-frame detections carry the timestamps of the
   sampling asked for (`fps` or `every`), and the frames that show bus.jpg find the bus;
2. the job reports progress on the WebSocket batch jobs use, and its end sends the same
   report email and signed webhook;
3. the annotated video downloads and decodes, with one frame per sampled frame;
4. a non-video, a wrong codec, a too long and a too large file are refused with a clear
   error, and nothing is stored;
5. another user's video job is 404 on every route.

The videos are made here from the shared images (objectvision_devstack.videos). The shared
stack runs with MAX_VIDEO_BYTES = 2 MiB and MAX_VIDEO_SECONDS = 12 (tests/conftest.py), so
tiny files can exceed them. Each test signs up its own users.
"""

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from objectvision_client import Client
from objectvision_devstack.api_users import PASSWORD, Account, fresh_network, signed_in
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.image_server import image_server
from objectvision_devstack.mail import Mailbox
from objectvision_devstack.stack import Stack
from objectvision_devstack.triton import REPOSITORY_ROOT
from objectvision_devstack.videos import make_video
from objectvision_devstack.waiting import eventually

IMAGES = REPOSITORY_ROOT.parent / "shared" / "images"
BUS = IMAGES / "bus.jpg"
ZIDANE = IMAGES / "zidane.jpg"
VIDEO = "/api/v1/detect/video"
JOBS = "/api/v1/detect/jobs"
FPS = 10
JOB_WITHIN_SECONDS = 120.0
ARRIVES_WITHIN_SECONDS = 45.0
REPORT_SUBJECT_PREFIX = "Your detection job finished"


async def _account(client: httpx.AsyncClient) -> Account:
    return await signed_in(client, prefix="video", name="Video User")


@pytest.fixture(scope="module")
def bus_then_zidane(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """4 s at 10 fps, 640x480, H.264 in MP4: bus.jpg for 2 s, then zidane.jpg for 2 s."""
    path = tmp_path_factory.mktemp("videos") / "bus-then-zidane.mp4"
    return make_video(path, [(BUS, 2 * FPS), (ZIDANE, 2 * FPS)], fps=FPS).read_bytes()


@pytest.fixture(scope="module")
def unusable(tmp_path_factory: pytest.TempPathFactory, bus_then_zidane: bytes) -> list:
    """(filename, bytes, params, HTTP status, what the error message says) per refused file."""
    folder = tmp_path_factory.mktemp("unusable")
    mjpeg = make_video(
        folder / "motion.mov", [(BUS, 3)], codec="mjpeg", container="mov", pix_fmt="yuvj420p"
    )
    too_long = make_video(folder / "long.mp4", [(BUS, 26)], fps=2, width=64, height=48)
    # Over MAX_VIDEO_BYTES (2 MiB) but under the body limit, so the route itself answers.
    too_large = bus_then_zidane[:32] + bytes(2 * 1024 * 1024 + 40 * 1024)
    return [
        ("notes.txt", b"not a video at all\n" * 500, {}, 415, "the file is not a video"),
        ("bus.mp4", BUS.read_bytes(), {}, 415, "the file is a JPEG image, not a supported video"),
        ("motion.mov", mjpeg.read_bytes(), {}, 415, "the video codec mjpeg is not supported"),
        ("long.mp4", too_long.read_bytes(), {}, 413, "the video is 13.0 s long; at most 12.0 s"),
        ("huge.mp4", too_large, {}, 413, "at most 2.0 MiB per video are accepted"),
        ("both.mp4", bus_then_zidane, {"fps": 2, "every": 3}, 422, "not both"),
        ("cut.mp4", bus_then_zidane[:40_000], {}, 422, "corrupt or truncated"),
    ]


async def _upload(
    client: httpx.AsyncClient,
    account: Account,
    data: bytes,
    *,
    filename: str = "street.mp4",
    content_type: str = "video/mp4",
    **params: Any,
) -> httpx.Response:
    return await client.post(
        VIDEO,
        files={"file": (filename, data, content_type)},
        data={key: str(value) for key, value in params.items()},
        headers=account.headers,
        timeout=120,
    )


async def _finished(client: httpx.AsyncClient, account: Account, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_WITHIN_SECONDS
    while True:
        response = await client.get(f"{JOBS}/{job_id}", headers=account.headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        await asyncio.sleep(0.25)


async def _job_messages(stack: Stack, account: Account, job_id: str) -> list[dict[str, Any]]:
    """Everything the job's WebSocket sends until the server closes it (normally)."""
    url = f"{stack.gateway_url.replace('http://', 'ws://')}/api/v1/ws/jobs/{job_id}"
    messages = []
    async with asyncio.timeout(JOB_WITHIN_SECONDS):
        async with connect(url, additional_headers=account.headers) as socket:
            try:
                while True:
                    messages.append(json.loads(await socket.recv()))
            except ConnectionClosed:
                assert socket.close_code == 1000
                return messages


def _decoded(data: bytes, tmp_path: Path) -> tuple[str, list[float]]:
    """The codec of a downloaded video and the timestamps of every frame it decodes to."""
    path = tmp_path / f"{uuid.uuid4().hex}.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.name, [float(f.time) for f in container.decode(stream)]


def _stored_files(stack: Stack) -> int:
    root = stack.data_dir / "objects"
    return sum(1 for path in root.rglob("*") if path.is_file()) if root.exists() else 0


async def test_a_video_job_has_timestamped_frames_progress_a_report_and_an_annotated_video(
    gateway_client: httpx.AsyncClient,
    stack: Stack,
    mailbox: Mailbox,
    bus_then_zidane: bytes,
    hook_receiver,
    tmp_path,
) -> None:
    account = await _account(gateway_client)
    hook = await gateway_client.post(
        "/api/v1/webhooks",
        json={"url": hook_receiver.url, "events": ["job.completed"]},
        headers=account.headers,
    )
    assert hook.status_code == 201, hook.text
    secret = hook.json()["secret"]

    submitted = await _upload(gateway_client, account, bus_then_zidane, fps=2)

    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    job_id = job["job_id"]
    assert submitted.headers["Location"] == f"{JOBS}/{job_id}"
    assert job["kind"] == "video" and job["items"] == []
    video = job["video"]
    assert (video["container"], video["codec"], video["width"], video["height"]) == (
        "mp4",
        "h264",
        640,
        480,
    )
    assert (video["duration_seconds"], video["frame_count"], video["frame_rate"]) == (4.0, 40, 10.0)
    assert video["sampling"] == {"fps": 2.0, "every": None}
    assert video["sampled_frames"] == job["total"] == 8
    assert video["frames_url"] == f"{JOBS}/{job_id}/frames"

    # Live progress on the batch jobs' WebSocket, ending with job.completed.
    messages = await _job_messages(stack, account, job_id)
    *progress, final = messages
    assert final["type"] == "job.completed", messages
    assert (final["status"], final["total"], final["processed"], final["failed"]) == (
        "completed",
        8,
        8,
        0,
    )
    assert all(message["type"] == "job.progress" for message in progress)
    done = [message["processed"] for message in progress]
    assert done == sorted(done)

    finished = await _finished(gateway_client, account, job_id)
    assert (finished["status"], finished["processed"], finished["failed"]) == ("completed", 8, 0)
    assert finished["video"]["annotated_url"] == f"{JOBS}/{job_id}/annotated"

    # Per-frame detections at the sampling's timestamps: the bus for 2 s, then people.
    listed = await gateway_client.get(f"{JOBS}/{job_id}/frames", headers=account.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert (page["total"], page["width"], page["height"]) == (8, 640, 480)
    frames = page["frames"]
    assert [f["frame_index"] for f in frames] == [0, 5, 10, 15, 20, 25, 30, 35]
    assert [f["timestamp_ms"] for f in frames] == [0, 500, 1000, 1500, 2000, 2500, 3000, 3500]
    for frame in frames:
        classes = {found["class"] for found in frame["detections"]}
        assert frame["error"] is None
        if frame["timestamp_ms"] < 2000:
            assert "bus" in classes, frame
        else:
            assert "bus" not in classes and "person" in classes, frame
    counts: dict[str, int] = {}
    for frame in frames:
        for found in frame["detections"]:
            counts[found["class"]] = counts.get(found["class"], 0) + 1
    assert final["class_counts"] == counts

    # The annotated video: H.264, one frame per sampled frame, at the frames' times.
    annotated = await gateway_client.get(f"{JOBS}/{job_id}/annotated", headers=account.headers)
    assert annotated.status_code == 200, annotated.text
    assert annotated.headers["content-type"] == "video/mp4"
    codec, times = _decoded(annotated.content, tmp_path)
    assert codec == "h264"
    assert times == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5], abs=0.002)

    # The same report email and signed webhook as a batch job.
    report = await eventually(
        lambda: mailbox.about(account.email, REPORT_SUBJECT_PREFIX, prefix=True),
        within=ARRIVES_WITHIN_SECONDS,
        what="report email",
    )
    assert len(report) == 1
    assert report[0]["Subject"] == f"{REPORT_SUBJECT_PREFIX}: 8 of 8 frames"
    text = report[0].get_body(preferencelist=("plain",)).get_content()
    assert job_id in text
    assert "Frames: 8 sampled, 8 processed, 0 failed." in text
    (post,) = await eventually(
        hook_receiver.received, within=ARRIVES_WITHIN_SECONDS, what="webhook"
    )
    headers, body = post.headers, post.body
    assert headers["x-objectvision-event"] == "job.completed"
    signed = hmac.new(
        secret.encode(), f"{headers['x-objectvision-timestamp']}.".encode() + body, hashlib.sha256
    )
    assert headers["x-objectvision-signature"] == f"v1={signed.hexdigest()}"
    data = json.loads(body)["data"]
    assert (data["job_id"], data["status"], data["processed"]) == (job_id, "completed", 8)
    assert data["kind"] == "video", "a receiver can tell a video job's frames from images"
    assert data["class_counts"] == counts


async def test_every_nth_frame_gives_the_frames_of_that_stride(
    gateway_client: httpx.AsyncClient, bus_then_zidane: bytes
) -> None:
    account = await _account(gateway_client)

    submitted = await _upload(gateway_client, account, bus_then_zidane, every=10)

    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    assert submitted.json()["video"]["sampling"] == {"fps": None, "every": 10}
    finished = await _finished(gateway_client, account, job_id)
    assert (finished["status"], finished["total"]) == ("completed", 4)
    frames = (await gateway_client.get(f"{JOBS}/{job_id}/frames", headers=account.headers)).json()[
        "frames"
    ]
    assert [(f["frame_index"], f["timestamp_ms"]) for f in frames] == [
        (0, 0),
        (10, 1000),
        (20, 2000),
        (30, 3000),
    ]
    assert ["bus" in {d["class"] for d in f["detections"]} for f in frames] == [
        True,
        True,
        False,
        False,
    ]


async def test_a_video_by_url_is_fetched_by_the_gateway_and_runs_as_an_upload_does(
    gateway_client: httpx.AsyncClient, stack: Stack, bus_then_zidane: bytes
) -> None:
    """The session stack lets the gateway fetch from 127.0.0.1 (IMAGE_URL_ALLOW_PRIVATE);
    the address rules themselves are gateway/tests/test_media_urls.py's."""
    account = await _account(gateway_client)
    files = {"gate-3.mp4": bus_then_zidane, "notes.txt": b"not a video at all\n" * 50}
    with image_server(files) as host:
        submitted = await gateway_client.post(
            VIDEO,
            data={"url": host.file_url("gate-3.mp4"), "every": "10"},
            headers=account.headers,
        )
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["video"]["filename"] == "gate-3.mp4"
        assert host.received()[-1].headers["accept"] == "video/*"
        before = _stored_files(stack)
        refusals = [
            ({"url": f"{host.url}/files/missing.mp4"}, {}, 422, "video_url_unreachable", "404"),
            ({"url": host.file_url("notes.txt")}, {}, 415, None, "not a video"),
            (
                {"url": host.file_url("gate-3.mp4")},
                {"files": {"file": ("gate-3.mp4", bus_then_zidane, "video/mp4")}},
                422,
                "validation_error",
                "not both",
            ),
            ({"url": "ftp://example.com/gate-3.mp4"}, {}, 422, "video_url_forbidden", "http"),
        ]
        for data, extra, status, code, message in refusals:
            refused = await gateway_client.post(VIDEO, data=data, headers=account.headers, **extra)
            assert refused.status_code == status, (data, refused.text)
            assert code is None or refused.json()["error"]["code"] == code, refused.text
            assert message in refused.json()["error"]["message"], refused.text
        assert _stored_files(stack) == before

    finished = await _finished(gateway_client, account, submitted.json()["job_id"])
    assert (finished["status"], finished["total"]) == ("completed", 4)


async def test_unusable_videos_are_refused_with_a_clear_error_and_nothing_is_stored(
    gateway_client: httpx.AsyncClient, stack: Stack, unusable: list
) -> None:
    account = await _account(gateway_client)
    before = _stored_files(stack)

    for name, data, params, status, message in unusable:
        response = await _upload(gateway_client, account, data, filename=name, **params)
        assert response.status_code == status, (name, response.text)
        assert message in response.json()["error"]["message"], (name, response.text)

    assert _stored_files(stack) == before


async def test_another_users_video_job_is_404_everywhere(
    gateway_client: httpx.AsyncClient, bus_then_zidane: bytes
) -> None:
    owner = await _account(gateway_client)
    stranger = await _account(gateway_client)
    submitted = await _upload(gateway_client, owner, bus_then_zidane, every=20)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    await _finished(gateway_client, owner, job_id)

    for path in (f"{JOBS}/{job_id}", f"{JOBS}/{job_id}/frames", f"{JOBS}/{job_id}/annotated"):
        response = await gateway_client.get(path, headers=stranger.headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"
        assert (await gateway_client.get(path, headers=owner.headers)).status_code == 200


# The client library and the `objectvision` command


def _signed_up_email(stack: Stack) -> str:
    address = f"video-cli-{uuid.uuid4().hex}@example.com"
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(address, PASSWORD, "Video CLI")
    return address


def test_the_client_submits_a_video_follows_it_and_downloads_the_annotated_video(
    stack: Stack, bus_then_zidane: bytes, tmp_path: Path
) -> None:
    address = _signed_up_email(stack)
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.login(address, PASSWORD)

        job = client.submit_video(("street.mp4", bus_then_zidane), fps=1)
        assert job.kind == "video" and job.video is not None
        assert (job.video.fps, job.video.every, job.video.sampled_frames) == (1.0, None, 4)
        done = client.wait_for_job(job.job_id, poll_seconds=0.25, timeout=JOB_WITHIN_SECONDS)
        page = client.video_frames(done.job_id)
        target = tmp_path / "annotated.mp4"
        with target.open("wb") as file:
            size = client.annotated_video(done.job_id, file)

    assert done.status == "completed" and done.video is not None
    assert done.video.annotated_url == f"{JOBS}/{job.job_id}/annotated"
    assert [(f.frame_index, f.timestamp_ms) for f in page.frames] == [
        (0, 0),
        (10, 1000),
        (20, 2000),
        (30, 3000),
    ]
    assert [any(d.class_name == "bus" for d in f.detections) for f in page.frames] == [
        True,
        True,
        False,
        False,
    ]
    assert size == target.stat().st_size
    codec, times = _decoded(target.read_bytes(), tmp_path)
    assert (codec, len(times)) == ("h264", 4)


def test_the_detect_video_command_waits_prints_frames_and_saves_the_annotated_video(
    stack: Stack, bus_then_zidane: bytes, tmp_path: Path
) -> None:
    address = _signed_up_email(stack)
    clip = tmp_path / "street.mp4"
    clip.write_bytes(bus_then_zidane)
    objectvision = CommandLine(stack.gateway_url, tmp_path / "config")

    objectvision.run("login", "--email", address, "--password", PASSWORD)
    out = tmp_path / "out.mp4"

    result = objectvision.run(
        "detect-video", str(clip), "--every", "20", "--wait", "--annotate", str(out)
    )

    assert "Submitted street.mp4 (h264 640x480, 4.0 s)" in result.stderr
    assert "2 frames (every 20th frame)" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["FRAME", "TIME", "(S)", "OBJECTS"]
    rows = [line.split(maxsplit=2) for line in lines[1:]]
    assert [(row[0], row[1]) for row in rows] == [("0", "0.000"), ("20", "2.000")]
    assert "bus" in rows[0][2] and "bus" not in rows[1][2] and "person" in rows[1][2]
    assert f"Wrote {out}" in result.stderr
    codec, times = _decoded(out.read_bytes(), tmp_path)
    assert (codec, times) == ("h264", pytest.approx([0.0, 2.0], abs=0.002))

    both = objectvision.run("detect-video", str(clip), "--fps", "2", "--every", "3", expect=2)
    assert "not allowed with argument" in both.stderr
    refused = objectvision.run("detect-video", str(BUS), expect=1)
    assert "not a supported video" in refused.stderr


def test_the_detect_video_command_sends_a_url_for_the_gateway_to_fetch_and_waits(
    stack: Stack, tmp_path: Path
) -> None:
    """`objectvision detect-video URL` uploads nothing: the gateway fetches the video (the
    stack allows 127.0.0.1), and --wait and --annotate follow the job as for a file, the
    annotated video named after the URL's file."""
    clip = make_video(tmp_path / "clip.mp4", [(BUS, 2)], fps=FPS, width=64, height=48)
    address = _signed_up_email(stack)
    objectvision = CommandLine(stack.gateway_url, tmp_path / "config")
    objectvision.run("login", "--email", address, "--password", PASSWORD)
    out = tmp_path / "out"
    out.mkdir()

    with image_server({"gate-3.mp4": clip.read_bytes()}) as host:
        url = host.file_url("gate-3.mp4")
        result = objectvision.run(
            *("detect-video", url, "--every", "1", "--wait", "--annotate", str(out), "--json")
        )
        fetched = [request.path for request in host.received()]

    assert fetched == ["/files/gate-3.mp4"]
    assert "Submitted gate-3.mp4 (h264 64x48, 0.2 s)" in result.stderr
    job = json.loads(result.stdout)
    assert (job["status"], job["video"]["filename"]) == ("completed", "gate-3.mp4")
    assert [frame["frame_index"] for frame in job["frames"]] == [0, 1]
    annotated = out / "gate-3-annotated.mp4"
    assert f"Wrote {annotated}" in result.stderr
    codec, times = _decoded(annotated.read_bytes(), tmp_path)
    assert (codec, len(times)) == ("h264", 2)


async def test_a_video_job_takes_a_model_as_batch_jobs_do(
    gateway_client: httpx.AsyncClient, stack: Stack, bus_then_zidane: bytes
) -> None:
    account = await _account(gateway_client)
    models = (await gateway_client.get("/api/v1/models", headers=account.headers)).json()
    default = models["default_model"]
    before = _stored_files(stack)

    unknown = await _upload(gateway_client, account, bus_then_zidane, model="no-such-model")
    assert unknown.status_code == 404, unknown.text
    assert default in unknown.json()["error"]["message"], "the error lists the known models"
    assert _stored_files(stack) == before

    chosen = await _upload(gateway_client, account, bus_then_zidane, every=40, model=default)
    assert chosen.status_code == 202, chosen.text
    finished = await _finished(gateway_client, account, chosen.json()["job_id"])
    assert (finished["status"], finished["model"]) == ("completed", default)
    assert finished["model_version"]


async def test_a_video_job_can_pixelate_a_class_in_its_annotated_video(
    gateway_client: httpx.AsyncClient, bus_then_zidane: bytes
) -> None:
    """ADR 0049: `redact` form fields name the classes the annotated video pixelates; the
    job's video lists them; an unknown class is refused before any job is made."""
    account = await _account(gateway_client)

    def upload(*classes: str) -> Any:
        return gateway_client.post(
            "/api/v1/detect/video",
            files={"file": ("bus.mp4", bus_then_zidane, "video/mp4")},
            data={"every": "1", "redact": list(classes)},
            headers=account.headers,
            timeout=120,
        )

    submitted = await upload("person", "0")
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["video"]["redact"] == ["person"]

    refused = await upload("unicorn")
    assert refused.status_code == 422, refused.text
    assert "unicorn" in refused.json()["error"]["message"]
