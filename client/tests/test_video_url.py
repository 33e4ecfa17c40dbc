"""A video sent by URL (`submit_video_url`, `objectvision detect-video URL`): the server
fetches it, so the request is a form with `url` and the options `submit_video` sends, no file,
and an idempotency key of its own that a retry repeats; the command line tells a URL from a
path as `objectvision detect` does, and follows the job as it follows an uploaded video.
Redacted videos (ADR 0049): `redact` goes as one `redact` form field per class, with an
uploaded file (multipart) and with a URL alike; the job's `video.redact` is read back, and
`detect-video --redact` and `jobs show` say which classes the annotated video pixelates.

The answers come from a real HTTP server on a local port that stands where the gateway would,
answers what each test scripts and keeps every request; tests/test_video_api.py and
tests/test_console_browser.py send videos by URL through the real services.
"""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from objectvision_client import (
    AsyncClient,
    Client,
    CountingLine,
    CountingZone,
    DetectionParams,
    ObjectVisionError,
    operations,
)
from objectvision_client.cli import EXIT_OK, main
from objectvision_client.retry import RetryPolicy
from objectvision_devstack.scripted_gateway import ScriptedGateway

VIDEO = "/api/v1/detect/video"
JOB_ID = "6b1f3c2a-0000-4000-8000-000000000007"
# A signed URL whose token has dots: its file is named by the path, never by the query.
CLIP_URL = "https://cameras.example.com/gate-3/0600.mp4?token=eyJhbGci.eyJleHAi.c2lnbmF0"
QUICK_RETRIES = RetryPolicy(max_attempts=3, backoff_base=0.01)
SUBMITTED = {
    "job_id": JOB_ID,
    "status": "pending",
    "kind": "video",
    "total": 2,
    "video": {
        "filename": "0600.mp4",
        "container": "mp4",
        "codec": "h264",
        "width": 640,
        "height": 480,
        "duration_seconds": 4.0,
        "frame_rate": 10.0,
        "frame_count": 40,
        "sampled_frames": 2,
        "sampling": {"fps": None, "every": 20},
    },
}
COMPLETED = {
    **SUBMITTED,
    "status": "completed",
    "processed": 2,
    "video": {**SUBMITTED["video"], "annotated_url": f"/api/v1/detect/jobs/{JOB_ID}/annotated"},
}
FRAMES = {
    "job_id": JOB_ID,
    "width": 640,
    "height": 480,
    "frames": [
        {"frame_index": 0, "timestamp_seconds": 0.0, "timestamp_ms": 0, "detections": []},
        {"frame_index": 20, "timestamp_seconds": 2.0, "timestamp_ms": 2000, "detections": []},
    ],
    "total": 2,
    "limit": 1000,
    "offset": 0,
}
ANNOTATED = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        """The body as a URL-encoded form (what httpx sends for fields without files)."""
        assert self.headers["content-type"] == "application/x-www-form-urlencoded", self.headers
        return parse_qs(self.body.decode(), keep_blank_values=True, strict_parsing=True)

    def multipart(self) -> tuple[dict[str, list[str]], dict[str, tuple[str, bytes]]]:
        """The body as a multipart form (an upload): its text fields, each name with its
        values in order, and its files by field name, `(filename, bytes)`."""
        content_type = self.headers["content-type"]
        assert content_type.startswith("multipart/form-data"), self.headers
        message = BytesParser(policy=policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + self.body
        )
        fields: dict[str, list[str]] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for part in message.iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            filename = part.get_filename()
            if filename is None:
                fields.setdefault(name, []).append(payload.decode())
            else:
                files[name] = (filename, payload)
        return fields, files


class Gateway(ScriptedGateway[Sent]):
    """Answers each `METHOD path` with its scripted answers in turn (the last one again once
    they run out): JSON, or bytes sent as they are; keeps every request."""

    def submissions(self) -> list[Sent]:
        return [sent for sent in self.sent if (sent.method, sent.path) == ("POST", VIDEO)]


@pytest.fixture
def gateway(local_server: Callable[[Callable[[BaseHTTPRequestHandler], None]], str]) -> Gateway:
    stand_in = Gateway()

    def respond(request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        headers = {name.lower(): value for name, value in request.headers.items()}
        sent = Sent(
            request.command, request.path.split("?")[0], headers, request.rfile.read(length)
        )
        status, body = stand_in.answer(sent)
        is_bytes = isinstance(body, bytes)
        payload = body if is_bytes else json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "video/mp4" if is_bytes else "application/json")
        request.send_header("Content-Length", str(len(payload)))
        if status == 503:
            request.send_header("Retry-After", "0")
        request.end_headers()
        request.wfile.write(payload)

    stand_in.url = local_server(respond)
    return stand_in


GATE = CountingLine(name="gate", start=(0, 360), end=(640, 360))
QUEUE = CountingZone(name="queue", polygon=[(0, 0), (640, 0), (640, 200)])


def test_a_video_by_url_is_a_form_with_the_url_and_no_file_and_a_key(gateway: Gateway) -> None:
    gateway.answers(f"POST {VIDEO}", (202, SUBMITTED))
    with Client(gateway.url, api_key="ov_test") as client:
        job = client.submit_video_url(
            CLIP_URL,
            DetectionParams(confidence=0.4, model="yolov8n"),
            every=20,
            track=True,
            lines=[GATE],
            zones=[QUEUE],
            metadata={"camera": "gate-3"},
        )

    (sent,) = gateway.submissions()
    assert sent.form == {
        "url": [CLIP_URL],
        "confidence": ["0.4"],
        "model": ["yolov8n"],
        "every": ["20"],
        "track": ["true"],
        "lines": [json.dumps([GATE.to_json()])],
        "zones": [json.dumps([QUEUE.to_json()])],
        "metadata": [json.dumps({"camera": "gate-3"})],
    }
    assert b"filename=" not in sent.body and "multipart" not in sent.headers["content-type"]
    assert sent.headers["idempotency-key"]
    assert (job.job_id, job.kind, job.video and job.video.filename) == (JOB_ID, "video", "0600.mp4")


def test_a_video_by_url_takes_every_option_an_upload_takes_and_sends_them_alike() -> None:
    options: dict[str, Any] = {
        "fps": 2.5,
        "track": True,
        "lines": [GATE],
        "zones": [QUEUE],
        "metadata": {"order": "A-1042"},
        "idempotency_key": "gate-3-0600",
        "redact": ["person"],
    }
    params = DetectionParams(classes=["person", "car"], max_detections=50, iou=0.5)
    by_url = operations.submit_video_url(CLIP_URL, params, **options)
    uploaded = operations.submit_video(("0600.mp4", b"video"), params, **options)

    assert dict(by_url.data or {}) == {"url": CLIP_URL, **(uploaded.data or {})}
    assert (by_url.method, by_url.path, by_url.files) == ("POST", VIDEO, None)
    assert by_url.headers == uploaded.headers == {"Idempotency-Key": "gate-3-0600"}


def test_a_retried_submission_repeats_its_key_and_the_next_one_has_another(
    gateway: Gateway,
) -> None:
    unavailable = {"error": {"code": "unavailable", "message": "try again"}}
    gateway.answers(f"POST {VIDEO}", (503, unavailable), (202, SUBMITTED))
    with Client(gateway.url, api_key="ov_test", retry=QUICK_RETRIES) as client:
        client.submit_video_url(CLIP_URL, every=20)
        client.submit_video_url(CLIP_URL, every=20)

    refused, retried, second = (
        sent.headers.get("idempotency-key") for sent in gateway.submissions()
    )
    assert refused and retried == refused  # one submission, sent twice: one key
    assert second and second != refused  # another submission: another key
    assert [sent.form["url"] for sent in gateway.submissions()] == [[CLIP_URL]] * 3


def test_the_async_client_sends_a_video_url_with_the_callers_key(gateway: Gateway) -> None:
    gateway.answers(f"POST {VIDEO}", (202, SUBMITTED))

    async def submit() -> str:
        async with AsyncClient(gateway.url, api_key="ov_test") as client:
            job = await client.submit_video_url(CLIP_URL, fps=1, idempotency_key="frame-18821")
            return job.job_id

    assert asyncio.run(submit()) == JOB_ID
    (sent,) = gateway.submissions()
    assert sent.form == {"url": [CLIP_URL], "fps": ["1.0"]}
    assert sent.headers["idempotency-key"] == "frame-18821"


# Redacted videos (ADR 0049)

# The API lower-cases the classes it was given by name and names those given by id.
REDACTING = {**SUBMITTED, "video": {**SUBMITTED["video"], "redact": ["person", "car"]}}
CLIP = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 32


def test_redact_goes_as_one_form_field_per_class_with_a_file_and_with_a_url(
    gateway: Gateway,
) -> None:
    """An upload (multipart) and a URL (URL-encoded) carry the same `redact` fields, one a
    class, blanks and repeats dropped, beside the other options; nothing to redact sends no
    `redact` field at all. The job's `video.redact` is read back; a server that says nothing
    of it (before ADR 0049) redacts nothing."""
    gateway.answers(f"POST {VIDEO}", (202, REDACTING), (202, REDACTING), (202, SUBMITTED))

    async def by_url() -> tuple[str, ...]:
        async with AsyncClient(gateway.url, api_key="ov_test") as client:
            job = await client.submit_video_url(CLIP_URL, every=20, redact=("Person", "2"))
            assert job.video is not None
            return job.video.redact

    with Client(gateway.url, api_key="ov_test") as client:
        uploaded = client.submit_video(
            ("street.mp4", CLIP), every=20, redact=["person", " car ", "", "person"]
        )
        fetched = asyncio.run(by_url())
        plain = client.submit_video(("street.mp4", CLIP), every=20, redact=[])

    first, second, third = gateway.submissions()
    fields, files = first.multipart()
    assert fields == {"every": ["20"], "redact": ["person", "car"]}
    assert files == {"file": ("street.mp4", CLIP)}
    assert second.form == {"url": [CLIP_URL], "every": ["20"], "redact": ["Person", "2"]}
    assert third.multipart()[0] == {"every": ["20"]}
    assert uploaded.video is not None and plain.video is not None
    assert (uploaded.video.redact, fetched, plain.video.redact) == (
        ("person", "car"),
        ("person", "car"),
        (),
    )


def test_a_bare_class_name_to_redact_is_refused_before_a_video_is_sent(
    gateway: Gateway,
) -> None:
    """A string is a sequence of its letters: `redact="person"` would ask for p, e, r..."""
    with Client(gateway.url, api_key="ov_test") as client:
        with pytest.raises(TypeError, match=r"\['person'\]"):
            client.submit_video(("street.mp4", CLIP), redact="person")
        with pytest.raises(TypeError, match=r"\['person'\]"):
            client.submit_video_url(CLIP_URL, redact="person")
    assert gateway.sent == []


def test_an_unknown_class_to_redact_in_a_video_is_the_apis_422(gateway: Gateway) -> None:
    message = "unknown class 'unicorn'; the model knows: person, car"
    refused = {"error": {"code": "invalid_argument", "message": message}}
    gateway.answers(f"POST {VIDEO}", (422, refused))
    with Client(gateway.url, api_key="ov_test") as client, pytest.raises(ObjectVisionError) as err:
        client.submit_video_url(CLIP_URL, redact=["unicorn"])
    assert (err.value.status, err.value.code) == (422, "invalid_argument")
    assert "the model knows: person" in str(err.value)


def test_detect_video_sends_a_url_waits_and_names_the_annotated_video_after_it(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No file of that name is looked for: the URL goes to the server, and the job is
    followed as an uploaded video's is, its annotated video named after the URL's file."""
    job = f"/api/v1/detect/jobs/{JOB_ID}"
    gateway.answers(f"POST {VIDEO}", (202, SUBMITTED))
    gateway.answers(f"GET {job}", (200, COMPLETED))
    gateway.answers(f"GET {job}/frames", (200, FRAMES))
    gateway.answers(f"GET {job}/annotated", (200, ANNOTATED))
    outdir = tmp_path / "out"
    outdir.mkdir()

    code = main(
        [
            *("--api-url", gateway.url, "detect-video", CLIP_URL, "--every", "20", "--wait"),
            *("--annotate", str(outdir), "--meta", "camera=gate-3"),
        ]
    )

    printed = capsys.readouterr()
    assert code == EXIT_OK, printed.err
    (sent,) = gateway.submissions()
    assert sent.form == {
        "url": [CLIP_URL],
        "every": ["20"],
        "metadata": [json.dumps({"camera": "gate-3"})],
    }
    assert sent.headers["idempotency-key"]
    assert f"Submitted 0600.mp4 (h264 640x480, 4.0 s) as job {JOB_ID}" in printed.err
    assert "not named like" not in printed.err
    assert [line.split()[:2] for line in printed.out.splitlines()[1:]] == [
        ["0", "0.000"],
        ["20", "2.000"],
    ]
    assert (outdir / "0600-annotated.mp4").read_bytes() == ANNOTATED
    assert f"Job {JOB_ID} completed: 2 frames." in printed.err


def test_detect_video_refuses_a_url_with_another_scheme_as_a_missing_file(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only http(s) is a URL, as for `objectvision detect`: anything else is a path."""
    code = main(["--api-url", gateway.url, "detect-video", "ftp://example.com/gate-3.mp4"])

    assert code != EXIT_OK
    assert "gate-3.mp4: no such file" in capsys.readouterr().err
    assert gateway.sent == []


def test_detect_video_redact_sends_the_classes_and_jobs_show_says_what_is_pixelated(
    gateway: Gateway, api_key: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--redact` (repeatable) needs no --wait: the job's redaction is fixed when it is
    submitted. The submission's line says what the annotated video pixelates, and so does
    `jobs show`; a job that pixelates nothing says nothing of it."""
    clip = tmp_path / "street.mp4"
    clip.write_bytes(CLIP)
    job = f"/api/v1/detect/jobs/{JOB_ID}"
    gateway.answers(f"POST {VIDEO}", (202, REDACTING))
    gateway.answers(
        f"GET {job}", (200, {**COMPLETED, "video": REDACTING["video"]}), (200, COMPLETED)
    )

    redacting = ("--redact", "person", "--redact", "car")
    code = main(["--api-url", gateway.url, "detect-video", str(clip), "--every", "20", *redacting])

    printed = capsys.readouterr()
    assert code == EXIT_OK, printed.err
    assert printed.out == f"{JOB_ID}\n"
    assert "2 frames (every 20th frame). Annotated video: person, car pixelated." in printed.err
    (sent,) = gateway.submissions()
    fields, files = sent.multipart()
    assert fields == {"every": ["20"], "redact": ["person", "car"]}
    assert files == {"file": ("street.mp4", CLIP)}

    assert main(["--api-url", gateway.url, "jobs", "show", JOB_ID]) == EXIT_OK
    assert "Annotated video: person, car pixelated." in capsys.readouterr().err
    assert main(["--api-url", gateway.url, "jobs", "show", JOB_ID]) == EXIT_OK
    assert "pixelated" not in capsys.readouterr().err
