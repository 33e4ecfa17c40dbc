"""Share links of completed video jobs (ADR 0052) as the client library and `objectvision share`
send them and read the answers: the owner creates a link with `job_id` in place of
`detection_id` (exactly one, checked before anything is sent; no `redact` of the link's own),
lists a job's links and reads `job_id` back on every link; whoever holds a link reads what it
shows by its `kind` (a `SharedVideo`: the video's facts, the job's counts, never a file name
or id) and streams its annotated video to a file, with the token alone. A detection's link
read as a video, or a video's as a detection, is refused with the API's codes; the CLI says
which option fits the link instead.

The answers come from a real HTTP server on a local port that stands where the gateway would,
answers what each test scripts and keeps every request; tests/test_share_links_api.py runs the
routes against the real services, test_share_links.py covers detections' links.
"""

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from objectvision_client import (
    AsyncClient,
    Client,
    CountingLine,
    CountingZone,
    CreatedShareLink,
    LineCount,
    ObjectVisionConnectionError,
    ObjectVisionError,
    SharedDetection,
    SharedVideo,
    ShareLink,
    TokenPair,
    VideoFacts,
    VideoInfo,
    ZoneCount,
)
from objectvision_client.cli import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    main,
    share_links_table,
    shared_video_summary,
)
from objectvision_devstack.scripted_gateway import ScriptedGateway

SHARE_LINKS = "/api/v1/share-links"
SHARED = "/api/v1/shared"
SHARED_VIDEO_PATH = f"{SHARED}/video"
DETECTION_ID = "3f6c1d2e-0000-4000-8000-000000000001"
JOB_ID = "6b1f3c2a-0000-4000-8000-000000000007"
LINK_ID = "9a8b7c6d-0000-4000-8000-000000000012"
DETECTION_LINK_ID = "9a8b7c6d-0000-4000-8000-000000000002"
TOKEN = "ovs_" + "Vd0q7Zk1" + "B" * 35
URL = f"https://vision.example.com/#/shared?token={TOKEN}"
JOB_LINK: dict[str, Any] = {
    "id": LINK_ID,
    "detection_id": None,
    "job_id": JOB_ID,
    "created_at": "2026-12-06T17:40:00Z",
    "expires_at": "2099-12-13T17:40:00Z",
    "revoked_at": None,
    "active": True,
    "views": 0,
    "last_viewed_at": None,
    "token_prefix": TOKEN[:12],
    "redact": [],
}
CREATED_JOB_LINK = {**JOB_LINK, "token": TOKEN, "url": URL}
REVOKED_JOB_LINK = {**JOB_LINK, "revoked_at": "2026-12-07T09:00:00Z", "active": False, "views": 2}
DETECTION_LINK = {**JOB_LINK, "id": DETECTION_LINK_ID, "detection_id": DETECTION_ID, "job_id": None}
# A link as a server older than ADR 0052 answers it: no `job_id` at all.
OLD_DETECTION_LINK = {key: value for key, value in DETECTION_LINK.items() if key != "job_id"} | {
    "id": "9a8b7c6d-0000-4000-8000-000000000003"
}

VIDEO_FACTS = {
    "container": "mp4",
    "codec": "h264",
    "width": 1280,
    "height": 720,
    "duration_seconds": 12.5,
    "frame_rate": 30.0,
    "frame_count": 375,
    "sampling": {"fps": 6.0, "every": None},
    "sampled_frames": 75,
    "tracked": True,
    "lines": [{"name": "gate", "start": [0.0, 360.0], "end": [1280.0, 360.0]}],
    "line_counts": [
        {"line": "gate", "class_id": 0, "class_name": "person", "crossed_in": 3, "crossed_out": 1}
    ],
    "zones": [{"name": "queue", "polygon": [[0.0, 0.0], [640.0, 0.0], [640.0, 720.0]]}],
    "zone_counts": [
        {
            "zone": "queue",
            "class_id": 0,
            "class_name": "person",
            "visited": 4,
            "peak": 2,
            "mean_stay_seconds": 3.5,
        }
    ],
    "redact": ["car"],
}
SHOWN_VIDEO = {
    "kind": "video",
    "video": VIDEO_FACTS,
    "counts": {"car": 4, "person": 10},
    "model": "yolov8n",
    "model_version": "1",
    "completed_at": "2026-12-06T17:39:58Z",
    "expires_at": "2099-12-13T17:40:00Z",
}
SHOWN_DETECTION = {
    "kind": "detection",
    "image": {"width": 810, "height": 1080},
    "detections": [
        {
            "class": "bus",
            "class_id": 5,
            "confidence": 0.87,
            "bbox": {"x1": 20.0, "y1": 200.0, "x2": 120.0, "y2": 900.0},
        }
    ],
    "counts": {"bus": 1},
    "model": "yolov8n",
    "model_version": "1",
    "detected_at": "2026-12-06T17:39:58Z",
    "expires_at": "2099-12-13T17:40:00Z",
}
# Enough of an MP4 for the client, which streams the bytes to a file unread: a few chunks'
# worth, so the download is written as it arrives.
ANNOTATED_MP4 = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 1024
JPEG = b"\xff\xd8\xff\xe0annotated" + b"\x00" * 32


def _refused(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": "req-9"}}


SHOWS_VIDEO = _refused("share_link_shows_video", "this share link shows a video job")
SHOWS_IMAGE = _refused("share_link_shows_image", "this share link shows a detection")


@dataclass(frozen=True)
class BrokenOff:
    """A body that stops after `sent` of the bytes its Content-Length promised: a connection
    lost midway."""

    body: bytes
    sent: int


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]

    @property
    def credentials(self) -> dict[str, str]:
        """The account's credentials the request carried, if any."""
        return {
            name: value
            for name, value in self.headers.items()
            if name in ("authorization", "x-api-key")
        }


class Gateway(ScriptedGateway[Sent]):
    """What the stand-in gateway answers each `METHOD path`, and every request it was sent. A
    `bytes` answer is sent as an MP4 (a JPEG when it starts like one), a `BrokenOff` as an MP4
    cut short, anything else as JSON."""

    def requests(self) -> list[tuple[str, str, dict[str, list[str]], Any]]:
        return [(sent.method, sent.path, sent.query, sent.body) for sent in self.sent]


@pytest.fixture
def gateway(local_server: Callable[[Callable[[BaseHTTPRequestHandler], None]], str]) -> Gateway:
    stand_in = Gateway()

    def respond(request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length)
        target = urlsplit(request.path)
        status, body = stand_in.answer(
            Sent(
                request.command,
                target.path,
                parse_qs(target.query),
                json.loads(raw) if raw else None,
                {name.lower(): value for name, value in request.headers.items()},
            )
        )
        declared: int | None = None
        if isinstance(body, BrokenOff):
            payload, content_type, declared = body.body[: body.sent], "video/mp4", len(body.body)
        elif isinstance(body, bytes):
            jpeg = body.startswith(b"\xff\xd8")
            payload, content_type = body, "image/jpeg" if jpeg else "video/mp4"
        else:
            payload, content_type = json.dumps(body).encode(), "application/json"
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(declared or len(payload)))
        request.end_headers()
        request.wfile.write(payload)

    stand_in.url = local_server(respond)
    return stand_in


# The owner's calls


def test_a_link_is_created_for_a_video_job_by_its_id_and_reads_it_back(gateway: Gateway) -> None:
    gateway.answers(f"POST {SHARE_LINKS}", (201, CREATED_JOB_LINK))

    async def created_async() -> CreatedShareLink:
        async with AsyncClient(gateway.url, api_key="ov_test") as client:
            return await client.create_share_link(job_id=JOB_ID)

    with Client(gateway.url, api_key="ov_test") as client:
        created = client.create_share_link(job_id=JOB_ID, expires_in_days=2)
        # None for the detection, as a caller passing both through from its own options would.
        client.create_share_link(None, job_id=f" {JOB_ID} ", redact=[])
    assert asyncio.run(created_async()) == created
    assert gateway.requests() == [
        ("POST", SHARE_LINKS, {}, {"job_id": JOB_ID, "expires_in_days": 2}),
        ("POST", SHARE_LINKS, {}, {"job_id": JOB_ID}),
        ("POST", SHARE_LINKS, {}, {"job_id": JOB_ID}),
    ]
    assert [sent.credentials for sent in gateway.sent] == [{"x-api-key": "ov_test"}] * 3
    assert isinstance(created, CreatedShareLink)
    assert (created.id, created.job_id, created.detection_id) == (LINK_ID, JOB_ID, None)
    assert created.kind == "video"
    assert (created.token, created.url, created.redact) == (TOKEN, URL, ())
    assert TOKEN not in repr(created)
    assert created.raw == CREATED_JOB_LINK


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({}, "give detection_id or job_id$"),
        ({"detection_id": "  ", "job_id": ""}, "give detection_id or job_id$"),
        ({"detection_id": DETECTION_ID, "job_id": JOB_ID}, "not both"),
        ({"job_id": JOB_ID, "redact": ["person"]}, "redact is for a detection's link"),
    ],
    ids=["neither", "blanks", "both", "a job's link with redact"],
)
def test_a_link_to_neither_or_both_or_a_redacted_job_is_refused_before_anything_is_sent(
    gateway: Gateway, given: dict[str, Any], said: str
) -> None:
    with Client(gateway.url, api_key="ov_test") as client, pytest.raises(ValueError, match=said):
        client.create_share_link(**given)
    assert gateway.sent == []


def test_a_running_job_and_a_batch_job_are_the_apis_errors(gateway: Gateway) -> None:
    gateway.answers(
        f"POST {SHARE_LINKS}",
        (409, _refused("failed_precondition", "the job has no annotated video yet")),
        (404, _refused("not_found", "no such video job")),
    )
    with Client(gateway.url, api_key="ov_test") as client:
        with pytest.raises(ObjectVisionError) as running:
            client.create_share_link(job_id=JOB_ID)
        with pytest.raises(ObjectVisionError) as batch:
            client.create_share_link(job_id=JOB_ID)
    assert (running.value.status, running.value.code) == (409, "failed_precondition")
    assert (batch.value.status, batch.value.code) == (404, "not_found")


def test_the_list_filters_by_job_and_every_link_says_what_it_shows(gateway: Gateway) -> None:
    listed = {
        "items": [JOB_LINK, DETECTION_LINK, OLD_DETECTION_LINK],
        "total": 3,
        "limit": 20,
        "offset": 0,
    }
    gateway.answers(f"GET {SHARE_LINKS}", (200, listed))
    with Client(gateway.url, api_key="ov_test") as client:
        page = client.list_share_links(job_id=JOB_ID, limit=5)
        client.list_share_links(detection_id=DETECTION_ID)
    assert [sent.query for sent in gateway.sent] == [
        {"job_id": [JOB_ID], "limit": ["5"], "offset": ["0"]},
        {"detection_id": [DETECTION_ID], "limit": ["20"], "offset": ["0"]},
    ]
    job_link, detection_link, old_link = page.items
    assert (job_link.job_id, job_link.detection_id, job_link.kind) == (JOB_ID, None, "video")
    assert (detection_link.job_id, detection_link.detection_id) == (None, DETECTION_ID)
    # A server older than ADR 0052 sends no job_id: its links all show detections.
    assert (old_link.job_id, old_link.detection_id, old_link.kind) == (
        None,
        DETECTION_ID,
        "detection",
    )


def test_a_job_links_revocation_answers_it_revoked(gateway: Gateway) -> None:
    gateway.answers(f"DELETE {SHARE_LINKS}/{LINK_ID}", (200, REVOKED_JOB_LINK))
    with Client(gateway.url, api_key="ov_test") as client:
        revoked = client.revoke_share_link(LINK_ID)
    assert (revoked.job_id, revoked.active, revoked.views) == (JOB_ID, False, 2)
    assert revoked.revoked_at == datetime(2026, 12, 7, 9, tzinfo=UTC)


# A recipient's calls


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"api_key": "ov_owner"},
        {"tokens": TokenPair(access_token="owner-access", refresh_token="owner-refresh")},
    ],
    ids=["no credentials", "an API key", "a session"],
)
def test_a_shared_video_is_read_by_its_kind_with_the_token_alone(
    gateway: Gateway, credentials: dict[str, Any]
) -> None:
    gateway.answers(f"GET {SHARED}", (200, SHOWN_VIDEO))
    with Client(gateway.url, **credentials) as client:
        shown = client.shared(URL)
    (sent,) = gateway.sent
    assert (sent.method, sent.path, sent.query) == ("GET", SHARED, {})
    assert sent.headers["x-share-token"] == TOKEN and sent.credentials == {}
    assert isinstance(shown, SharedVideo) and shown.kind == "video"
    video = shown.video
    # The facts alone: not the owner's VideoInfo, which has a file name and URLs.
    assert type(video) is VideoFacts and not isinstance(video, VideoInfo)
    assert (video.container, video.codec, video.width, video.height) == ("mp4", "h264", 1280, 720)
    assert (video.duration_seconds, video.frame_rate, video.frame_count) == (12.5, 30.0, 375)
    assert (video.fps, video.every, video.sampled_frames, video.tracked) == (6.0, None, 75, True)
    assert video.lines == (CountingLine(name="gate", start=(0.0, 360.0), end=(1280.0, 360.0)),)
    assert video.line_counts == (
        LineCount(line="gate", class_id=0, class_name="person", crossed_in=3, crossed_out=1),
    )
    assert video.zones == (
        CountingZone(name="queue", polygon=((0.0, 0.0), (640.0, 0.0), (640.0, 720.0))),
    )
    assert video.zone_counts == (
        ZoneCount(
            zone="queue", class_id=0, class_name="person", visited=4, peak=2, mean_stay_seconds=3.5
        ),
    )
    assert video.redact == ("car",)
    assert shown.class_counts() == {"person": 10, "car": 4}
    assert list(shown.class_counts()) == ["person", "car"]
    assert (shown.model, shown.model_version) == ("yolov8n", "1")
    assert shown.completed_at == datetime(2026, 12, 6, 17, 39, 58, tzinfo=UTC)
    assert shown.expires_at == datetime(2099, 12, 13, 17, 40, tzinfo=UTC)
    assert shown.raw == SHOWN_VIDEO


def test_shared_reads_a_detection_with_its_kind_or_from_an_older_server_without(
    gateway: Gateway,
) -> None:
    without_kind = {key: value for key, value in SHOWN_DETECTION.items() if key != "kind"}
    gateway.answers(f"GET {SHARED}", (200, SHOWN_DETECTION), (200, without_kind))

    async def read() -> SharedDetection | SharedVideo:
        async with AsyncClient(gateway.url) as client:
            return await client.shared(TOKEN)

    with Client(gateway.url) as client:
        current = client.shared(TOKEN)
    older = asyncio.run(read())
    assert isinstance(current, SharedDetection) and isinstance(older, SharedDetection)
    assert (current.kind, older.kind) == ("detection", "detection")
    assert [obj.class_name for obj in older.objects] == ["bus"]
    assert (current.raw, older.raw) == (SHOWN_DETECTION, without_kind)


def test_a_kind_this_client_does_not_know_is_an_unexpected_response(gateway: Gateway) -> None:
    gateway.answers(f"GET {SHARED}", (200, {**SHOWN_VIDEO, "kind": "album"}))
    with Client(gateway.url) as client, pytest.raises(ObjectVisionError) as err:
        client.shared(TOKEN)
    assert err.value.code == "unexpected_response"
    assert "'album'" in str(err.value)


def test_shared_detection_of_a_video_link_says_to_read_it_as_one(gateway: Gateway) -> None:
    """The read is made (and counted) once; the answer is refused as the link's image would
    be, with the code of the API's refusal, and names the calls that fit."""
    gateway.answers(f"GET {SHARED}", (200, SHOWN_VIDEO))
    with Client(gateway.url) as client, pytest.raises(ObjectVisionError) as err:
        client.shared_detection(TOKEN)
    assert (err.value.status, err.value.code) == (409, "share_link_shows_video")
    assert "shared()" in str(err.value) and "shared_video()" in str(err.value)
    assert [(sent.method, sent.path) for sent in gateway.sent] == [("GET", SHARED)]


def test_a_shared_video_streams_to_a_file_with_the_token_alone(gateway: Gateway) -> None:
    gateway.answers(f"GET {SHARED_VIDEO_PATH}", (200, ANNOTATED_MP4))
    progress: list[int] = []
    tokens = TokenPair(access_token="owner-access", refresh_token="owner-refresh")

    async def download() -> tuple[int, bytes]:
        destination = io.BytesIO()
        async with AsyncClient(gateway.url, api_key="ov_owner") as client:
            size = await client.shared_video(TOKEN, destination)
        return size, destination.getvalue()

    destination = io.BytesIO()
    with Client(gateway.url, tokens=tokens) as client:
        size = client.shared_video(URL, destination, on_progress=progress.append)
    assert (size, destination.getvalue()) == (len(ANNOTATED_MP4), ANNOTATED_MP4)
    assert progress and progress == sorted(progress) and progress[-1] == size
    assert asyncio.run(download()) == (len(ANNOTATED_MP4), ANNOTATED_MP4)
    assert [(sent.method, sent.path, sent.query) for sent in gateway.sent] == [
        ("GET", SHARED_VIDEO_PATH, {})
    ] * 2
    assert all(sent.headers["x-share-token"] == TOKEN for sent in gateway.sent)
    assert all(sent.credentials == {} for sent in gateway.sent)


def test_the_video_of_a_detections_link_and_the_image_of_a_videos_are_the_apis_409s(
    gateway: Gateway,
) -> None:
    gateway.answers(f"GET {SHARED_VIDEO_PATH}", (409, SHOWS_IMAGE))
    gateway.answers(f"GET {SHARED}/image", (409, SHOWS_VIDEO))
    destination = io.BytesIO()
    with Client(gateway.url) as client:
        with pytest.raises(ObjectVisionError) as no_video:
            client.shared_video(TOKEN, destination)
        with pytest.raises(ObjectVisionError) as no_image:
            client.shared_image(TOKEN)
    assert (no_video.value.status, no_video.value.code) == (409, "share_link_shows_image")
    assert (no_image.value.status, no_image.value.code) == (409, "share_link_shows_video")
    assert destination.getvalue() == b""


def test_a_shared_video_broken_off_midway_says_how_much_arrived(gateway: Gateway) -> None:
    gateway.answers(f"GET {SHARED_VIDEO_PATH}", (200, BrokenOff(ANNOTATED_MP4, 4096)))
    with Client(gateway.url) as client, pytest.raises(ObjectVisionConnectionError) as err:
        client.shared_video(TOKEN, io.BytesIO())
    assert "broke off after 4096 bytes" in str(err.value)


def test_a_token_less_link_is_refused_before_anything_is_sent(gateway: Gateway) -> None:
    with Client(gateway.url) as client:
        with pytest.raises(ValueError, match="no token in it"):
            client.shared("https://vision.example.com/#/shared?from=mail")
        with pytest.raises(ValueError, match="no share token given"):
            client.shared_video(" ", io.BytesIO())
    assert gateway.sent == []


# The command line


@pytest.fixture
def no_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No saved session and no API key: what a recipient without an account has."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("OBJECTVISION_API_KEY", raising=False)


@pytest.fixture
def api_key(no_login: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBJECTVISION_API_KEY", "ov_test")


def _cli(gateway: Gateway, *args: str) -> int:
    try:
        return main(["--api-url", gateway.url, "share", *args])
    except SystemExit as exited:  # argparse's own refusals
        return int(str(exited.code))


def test_create_with_job_shares_the_job_and_says_what_the_link_shows(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"POST {SHARE_LINKS}", (201, CREATED_JOB_LINK))
    assert _cli(gateway, "create", "--job", JOB_ID, "--days", "2") == EXIT_OK
    printed = capsys.readouterr()
    assert printed.out == f"URL: {URL}\nToken: {TOKEN}\n"
    assert (
        f"Share link {LINK_ID} created for video job {JOB_ID}: anyone holding it sees the job's "
        "annotated video and what it counted until" in printed.err
    )
    assert "The token is shown only this once" in printed.err
    assert f"`objectvision share revoke {LINK_ID}`" in printed.err
    assert gateway.requests() == [
        ("POST", SHARE_LINKS, {}, {"job_id": JOB_ID, "expires_in_days": 2})
    ]


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ([DETECTION_ID, "--job", JOB_ID], "give DETECTION_ID or --job JOB_ID, not both"),
        (["--days", "2"], "give the DETECTION_ID to share, or --job JOB_ID"),
        (["--job", JOB_ID, "--redact", "person"], "--redact is for a detection's link"),
    ],
    ids=["both", "neither", "a job's link with redact"],
)
def test_create_refuses_both_neither_or_a_redacted_job_before_sending(
    gateway: Gateway,
    api_key: None,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    said: str,
) -> None:
    assert _cli(gateway, "create", *options) == EXIT_USAGE
    assert said in capsys.readouterr().err
    assert gateway.sent == []


def test_create_for_a_job_still_running_fails_with_the_apis_reason(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = _refused("failed_precondition", "the job has no annotated video yet")
    gateway.answers(f"POST {SHARE_LINKS}", (409, refused))
    assert _cli(gateway, "create", "--job", JOB_ID) == EXIT_FAILED
    printed = capsys.readouterr()
    assert printed.out == ""
    assert "the job has no annotated video yet (HTTP 409 failed_precondition" in printed.err


def test_the_links_table_has_a_job_column_when_a_link_shows_a_job() -> None:
    links = [ShareLink.from_json(link) for link in (JOB_LINK, DETECTION_LINK, REVOKED_JOB_LINK)]
    header, *rows = share_links_table(links).splitlines()
    assert header.split() == [
        "ID",
        "DETECTION",
        "JOB",
        "STATE",
        "VIEWS",
        "EXPIRES",
        "REDACT",
        "PREFIX",
    ]
    assert [row.split()[:5] for row in rows] == [
        [LINK_ID, "-", JOB_ID, "active", "0"],
        [DETECTION_LINK_ID, DETECTION_ID, "-", "active", "0"],
        [LINK_ID, "-", JOB_ID, "revoked", "2"],
    ]
    # A page of detections' links keeps the columns it had before ADR 0052.
    detections = share_links_table([ShareLink.from_json(DETECTION_LINK)]).splitlines()[0]
    assert "JOB" not in detections.split()


def test_list_with_job_asks_for_the_jobs_links(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = {"items": [JOB_LINK, REVOKED_JOB_LINK], "total": 2, "limit": 20, "offset": 0}
    gateway.answers(f"GET {SHARE_LINKS}", (200, listed))
    assert _cli(gateway, "list", "--job", JOB_ID) == EXIT_OK
    printed = capsys.readouterr()
    header, *rows = printed.out.splitlines()
    assert header.split()[:4] == ["ID", "DETECTION", "JOB", "STATE"]
    assert [row.split()[2:4] for row in rows] == [[JOB_ID, "active"], [JOB_ID, "revoked"]]
    assert "Showing 1-2 of 2." in printed.err
    assert _cli(gateway, "list", "--job", JOB_ID, "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out) == listed
    assert [sent.query for sent in gateway.sent] == [
        {"job_id": [JOB_ID], "limit": ["20"], "offset": ["0"]}
    ] * 2


def test_list_takes_a_detection_or_a_job_not_both(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(gateway, "list", "--detection", DETECTION_ID, "--job", JOB_ID) == EXIT_USAGE
    assert "not allowed with argument" in capsys.readouterr().err
    assert gateway.sent == []


def test_revoke_of_a_job_link_names_the_job(
    gateway: Gateway, api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway.answers(f"DELETE {SHARE_LINKS}/{LINK_ID}", (200, REVOKED_JOB_LINK))
    assert _cli(gateway, "revoke", LINK_ID) == EXIT_OK
    printed = capsys.readouterr()
    assert printed.out == f"{LINK_ID}\n"
    assert (
        f"Share link {LINK_ID} is revoked: it no longer shows video job {JOB_ID} "
        "(viewed 2 times)." in printed.err
    )


def test_the_video_summary_says_the_videos_facts_and_what_was_found() -> None:
    summary = shared_video_summary(SharedVideo.from_json(SHOWN_VIDEO))
    assert summary.startswith(
        "1280x720 mp4 video (h264), 12.5 s, 375 frames at 30 frames/s; 75 sampled (6 frames/s,"
        " objects tracked), 14 objects (person x10, car x4) found by yolov8n 1, completed on "
    )
    assert "; the link works until " in summary
    every = {**VIDEO_FACTS, "sampling": {"fps": None, "every": 5}, "tracked": False}
    bare = {
        **SHOWN_VIDEO,
        "video": every,
        "counts": {},
        "model": None,
        "model_version": None,
        "completed_at": None,
    }
    assert shared_video_summary(SharedVideo.from_json(bare)).startswith(
        "1280x720 mp4 video (h264), 12.5 s, 375 frames at 30 frames/s; 75 sampled (every 5th "
        "frame), 0 objects; the link works until "
    )


def test_show_of_a_video_link_prints_its_counts_and_writes_its_annotated_video(
    gateway: Gateway, no_login: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gateway.answers(f"GET {SHARED}", (200, SHOWN_VIDEO))
    gateway.answers(f"GET {SHARED_VIDEO_PATH}", (200, ANNOTATED_MP4))
    target = tmp_path / "shared.mp4"
    assert _cli(gateway, "show", URL, "--video", str(target)) == EXIT_OK
    printed = capsys.readouterr()
    classes, lines, zones = printed.out.split("\n\n")
    assert [row.split() for row in classes.splitlines()] == [
        ["CLASS", "OBJECTS"],
        ["person", "10"],
        ["car", "4"],
    ]
    assert [row.split() for row in lines.splitlines()] == [
        ["LINE", "CLASS", "IN", "OUT"],
        ["gate", "person", "3", "1"],
    ]
    assert zones.splitlines()[1].split() == ["queue", "person", "4", "2", "3.5", "s"]
    assert "Shared video: 1280x720 mp4 video (h264), 12.5 s, 375 frames" in printed.err
    assert "Annotated video: car pixelated." in printed.err
    assert f"Wrote the annotated video to {target} (" in printed.err
    assert target.read_bytes() == ANNOTATED_MP4
    # No `.part` left beside it, and no config written: the recipient stays logged out.
    assert [path.name for path in tmp_path.iterdir()] == ["shared.mp4"]
    assert [(sent.method, sent.path) for sent in gateway.sent] == [
        ("GET", SHARED),
        ("GET", SHARED_VIDEO_PATH),
    ]
    assert all(sent.headers["x-share-token"] == TOKEN for sent in gateway.sent)
    assert all(sent.credentials == {} for sent in gateway.sent)


@pytest.mark.parametrize(
    ("shown", "route", "content"),
    [
        (SHOWN_VIDEO, SHARED_VIDEO_PATH, ANNOTATED_MP4),
        (SHOWN_DETECTION, f"{SHARED}/image", JPEG),
    ],
    ids=["a video job's", "a detection's"],
)
def test_show_output_writes_what_the_link_shows(
    gateway: Gateway,
    api_key: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    shown: dict[str, Any],
    route: str,
    content: bytes,
) -> None:
    gateway.answers(f"GET {SHARED}", (200, shown))
    gateway.answers(f"GET {route}", (200, content))
    target = tmp_path / "shared.out"
    assert _cli(gateway, "show", TOKEN, "-o", str(target), "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out) == shown
    assert target.read_bytes() == content
    assert [sent.path for sent in gateway.sent] == [SHARED, route]
    # An API key set in the environment is never sent with a link's token.
    assert all(sent.credentials == {} for sent in gateway.sent)


@pytest.mark.parametrize(
    ("shown", "options", "said"),
    [
        (SHOWN_VIDEO, ["--image", "x.jpg"], "shows a video job, which has no image: write its"),
        (SHOWN_VIDEO, ["-o", "x.mp4", "--original"], "--original is for a detection's image"),
        (SHOWN_DETECTION, ["--video", "x.mp4"], "shows a detection, which has no video"),
    ],
    ids=["image of a video", "original of a video", "video of a detection"],
)
def test_show_says_which_option_fits_a_link_of_the_other_kind(
    gateway: Gateway,
    no_login: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shown: dict[str, Any],
    options: list[str],
    said: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    gateway.answers(f"GET {SHARED}", (200, shown))
    assert _cli(gateway, "show", TOKEN, *options) == EXIT_FAILED
    printed = capsys.readouterr()
    assert printed.out == ""
    assert said in printed.err
    # What the link shows was read; nothing was downloaded, nothing written.
    assert [sent.path for sent in gateway.sent] == [SHARED]
    assert not (tmp_path / options[1]).exists()


def test_show_of_a_video_broken_off_leaves_no_file(
    gateway: Gateway, no_login: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gateway.answers(f"GET {SHARED}", (200, SHOWN_VIDEO))
    gateway.answers(f"GET {SHARED_VIDEO_PATH}", (200, BrokenOff(ANNOTATED_MP4, 4096)))
    folder = tmp_path / "out"
    folder.mkdir()
    assert _cli(gateway, "show", TOKEN, "--video", str(folder / "shared.mp4")) == EXIT_FAILED
    assert "broke off after 4096 bytes" in capsys.readouterr().err
    # Neither the video nor its `.part`: a broken download never looks like a whole one.
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "said", "code"),
    [
        (["--image", "a.jpg", "--video", "a.mp4"], "not allowed with argument", EXIT_USAGE),
        (["--video", "."], "--video . is a folder", EXIT_FAILED),
        (["--original"], "--original says which image --image writes", EXIT_USAGE),
    ],
    ids=["image and video", "a folder", "original alone"],
)
def test_show_refuses_what_it_cannot_write_before_sending(
    gateway: Gateway,
    no_login: None,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    said: str,
    code: int,
) -> None:
    assert _cli(gateway, "show", TOKEN, *options) == code
    assert said in capsys.readouterr().err
    assert gateway.sent == []
