"""FFmpeg reads uploads in a child process that holds no secret and limits itself (ADR 0040):
what the child can see and use, and what a crash, a lie or a limit of the child does to the
upload or job it serves (that one fails, saying why; the service goes on). The child also
confines itself (ADR 0041, test_sandbox_confinement.py): here, that a decoding child is, and
that every codec decodes under it."""

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from detection_service.sandbox.limits import SandboxLimits
from detection_service.video.decoding import DecodedFrame
from detection_service.video.probe import Sampling, VideoContainer, VideoLimits
from detection_service.video.sandbox import (
    SandboxedFrameReader,
    VideoDecodeError,
    probe_in_sandbox,
)
from objectvision.v1 import detection_pb2
from objectvision_common.errors import InvalidArgument, UnsupportedMediaType
from objectvision_devstack.videos import make_video

from .conftest import IMAGES

BUS = IMAGES / "bus.jpg"
GENEROUS = SandboxLimits(memory_bytes=4 * 2**30, cpu_seconds=120)
LIMITS = VideoLimits(max_bytes=2**30, max_seconds=600, max_frame_pixels=10**8, max_fps=60)
A_SECRET = "sandbox-test-secret-value"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("sandbox") / "bus.mp4", [(BUS, 20)], fps=10)


def _reader(path: Path, limits: SandboxLimits = GENEROUS) -> SandboxedFrameReader:
    return SandboxedFrameReader(
        path, VideoContainer.MP4, Sampling(every=1), width=640, height=480, sandbox=limits
    )


def _proc_lines(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace")


def test_the_decoder_child_inherits_no_secret_and_runs_under_its_limits(clip, monkeypatch):
    monkeypatch.setenv("SERVICE_TOKEN_SECRET", A_SECRET)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://objectvision:{A_SECRET}@db/objectvision")
    limits = SandboxLimits(memory_bytes=3 * 2**30, cpu_seconds=77)
    reader = _reader(clip, limits)
    try:
        first = reader.next_sampled()
        assert first is not None and first.index == 0
        environment = _proc_lines(reader.pid, "environ")
        assert A_SECRET not in environment
        assert "SERVICE_TOKEN_SECRET" not in environment
        assert "DATABASE_URL" not in environment
        bounds = {
            line[:26].strip(): line[26:].split()[:2]
            for line in _proc_lines(reader.pid, "limits").splitlines()[1:]
        }
        assert bounds["Max address space"][0] == str(3 * 2**30)
        assert bounds["Max cpu time"] == ["77", "82"]
        assert bounds["Max file size"] == ["0", "0"]
        assert bounds["Max core file size"] == ["0", "0"]
    finally:
        reader.close()


def _all_frames(reader: SandboxedFrameReader) -> list[DecodedFrame]:
    """Every sampled frame the reader gives, then the reader closed."""
    try:
        frames = []
        while (frame := reader.next_sampled()) is not None:
            frames.append(frame)
        return frames
    finally:
        reader.close()


def test_the_sampled_frames_come_back_whole_and_in_order(clip):
    frames = _all_frames(_reader(clip))
    assert [f.index for f in frames] == list(range(20))
    assert [f.seconds for f in frames] == pytest.approx([n / 10 for n in range(20)])
    assert all(f.bgr.shape == (480, 640, 3) for f in frames)
    assert all(f.jpeg[:2] == b"\xff\xd8" for f in frames), "JPEG for the model"
    assert frames[5].bgr.mean() > 50, "a picture, not an empty buffer"


def test_a_decoder_that_crashes_mid_video_fails_that_video_saying_so(clip):
    reader = _reader(clip)
    try:
        assert reader.next_sampled() is not None
        os.kill(reader.pid, signal.SIGSEGV)
        with pytest.raises(VideoDecodeError, match=r"stopped decoding: .*SIGSEGV"):
            while reader.next_sampled() is not None:
                pass
    finally:
        reader.close()


def test_a_video_of_another_frame_size_than_probed_is_refused(clip):
    reader = SandboxedFrameReader(
        clip, VideoContainer.MP4, Sampling(every=1), width=320, height=240, sandbox=GENEROUS
    )
    try:
        with pytest.raises(VideoDecodeError, match="changes its frame size to 640x480"):
            reader.next_sampled()
    finally:
        reader.close()


def test_a_file_the_decoder_cannot_open_fails_with_the_reason(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    reader = _reader(garbage)
    try:
        with pytest.raises(VideoDecodeError, match="cannot be opened"):
            reader.next_sampled()
    finally:
        reader.close()


def test_closing_a_reader_stops_its_child_at_once(clip):
    reader = _reader(clip)
    assert reader.next_sampled() is not None
    pid = reader.pid
    reader.close()
    assert not Path(f"/proc/{pid}").exists() or "Z" in _proc_lines(pid, "stat").split()[2]


def test_the_probe_answers_and_refuses_as_it_would_in_process(clip, tmp_path):
    found = probe_in_sandbox(clip, VideoContainer.MP4, LIMITS, Sampling(every=4), GENEROUS)
    assert (found.width, found.height, found.frame_count, found.sampled_frames) == (640, 480, 20, 5)
    assert found.codec == "h264"
    mjpeg = make_video(
        tmp_path / "mjpeg.mov", [(BUS, 3)], codec="mjpeg", container="mov", pix_fmt="yuvj420p"
    )
    with pytest.raises(UnsupportedMediaType, match="codec mjpeg is not supported"):
        probe_in_sandbox(mjpeg, VideoContainer.MOV, LIMITS, Sampling(fps=1), GENEROUS)


def test_a_probe_whose_child_dies_refuses_the_upload_saying_why(clip):
    starved = SandboxLimits(memory_bytes=64 * 2**20, cpu_seconds=60)
    with pytest.raises(InvalidArgument, match=r"could not be read|more memory"):
        probe_in_sandbox(clip, VideoContainer.MP4, LIMITS, Sampling(every=1), starved)


@pytest.mark.slow  # a 400-frame 720p video is made and decoded: make test-slow
async def test_a_job_whose_decoder_uses_up_its_cpu_time_fails_saying_so_and_the_service_goes_on(
    make_harness, user, tmp_path, bus_jpg
):
    """Accepted by a service with the default limits (its probe is cheap), then run by one
    whose decoder may use 1 CPU second: decoding the 400 frames and making their JPEGs takes
    about 2.7 on the development machine."""
    stream = f"detection:jobs:sandbox-cpu:{uuid.uuid4().hex[:8]}"
    accepting = await make_harness(JOB_STREAM=stream, JOB_WORKERS=0)
    harness = await make_harness(JOB_STREAM=stream, JOB_WORKERS=1, VIDEO_SANDBOX_CPU_SECONDS=1)
    long = make_video(tmp_path / "long.mp4", [(BUS, 400)], fps=25, width=1280, height=720)

    async def upload():
        yield detection_pb2.VideoUpload(
            header=detection_pb2.VideoUploadHeader(
                filename="long.mp4",
                sampling=detection_pb2.VideoSampling(every=1),
                size_bytes=long.stat().st_size,
            )
        )
        yield detection_pb2.VideoUpload(chunk=long.read_bytes())

    job = await accepting.stub.SubmitVideoJob(
        upload(), metadata=accepting.metadata(user), timeout=60
    )
    deadline = time.monotonic() + 120
    while job.status not in {detection_pb2.JOB_STATUS_COMPLETED, detection_pb2.JOB_STATUS_FAILED}:
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.2)
        job = await harness.stub.GetJob(
            detection_pb2.GetJobRequest(job_id=job.id), metadata=harness.metadata(user), timeout=30
        )
    assert job.status == detection_pb2.JOB_STATUS_FAILED
    assert "used up its CPU time (VIDEO_SANDBOX_CPU_SECONDS)" in job.error

    answer = await harness.stub.Detect(
        detection_pb2.DetectRequest(images=[detection_pb2.ImageInput(data=bus_jpg)]),
        metadata=harness.metadata(user),
        timeout=60,
    )
    assert any(o.class_name == "bus" for o in answer.results[0].objects)


def test_the_decoder_child_is_confined_while_it_decodes(clip):
    reader = _reader(clip)
    try:
        assert reader.next_sampled() is not None
        status = dict(
            line.split(":\t", 1) for line in _proc_lines(reader.pid, "status").splitlines()
        )
        assert status["NoNewPrivs"] == "1"
        assert status["Seccomp"] == "2"  # a filter is loaded
        assert int(status["Seccomp_filters"]) >= 1
        assert reader.next_sampled() is not None
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("encoder", "container", "codec"),
    [
        ("libx264", VideoContainer.MP4, "h264"),
        ("libx265", VideoContainer.MP4, "hevc"),
        ("libvpx", VideoContainer.WEBM, "vp8"),
        ("libvpx-vp9", VideoContainer.WEBM, "vp9"),
        ("libsvtav1", VideoContainer.MP4, "av1"),
        ("mpeg4", VideoContainer.MP4, "mpeg4"),
    ],
)
def test_every_supported_codec_is_probed_and_decoded_by_a_confined_child(
    tmp_path, encoder, container, codec
):
    """The seccomp filter lists no syscall a demuxer or decoder of ours uses: with the
    confinement required, each codec's frames come back whole."""
    required = SandboxLimits(memory_bytes=4 * 2**30, cpu_seconds=120, require_confinement=True)
    video = make_video(
        tmp_path / f"clip.{container.value}",
        [(BUS, 4)],
        fps=10,
        codec=encoder,
        container=container.value,
    )
    found = probe_in_sandbox(video, container, LIMITS, Sampling(every=1), required)
    assert (found.codec, found.sampled_frames) == (codec, 4)
    frames = _all_frames(
        SandboxedFrameReader(
            video,
            container,
            Sampling(every=1),
            width=found.width,
            height=found.height,
            sandbox=required,
        )
    )
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert all(f.bgr.shape == (found.height, found.width, 3) for f in frames)
