"""Listing and cancelling jobs end to end (ADR 0022): gateway -> detection-service ->
PostgreSQL, Redis, the outbox -> notification-service -> WebSocket, webhooks and email, all real.

The stack here (`queued_stack`, tests/conftest.py) runs detection-service with no job workers
(JOB_WORKERS=0), so every job stays queued until it is cancelled: what a job is when it is
cancelled is known, not raced. What a worker does with a cancelled job (skips its items, stops
a video) is detection-service's own test (detection-service/tests/test_job_list_and_cancel.py);
a completed job refusing to be cancelled is tests/test_cli.py's, on the shared stack whose
workers run.
"""

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from objectvision_client import AsyncClient, DetectionParams
from objectvision_devstack.answers import api_error, api_error_with_request_id
from objectvision_devstack.api_users import PASSWORD, Account, fresh_network, signed_in
from objectvision_devstack.command_line import CommandLine
from objectvision_devstack.mail import Mailbox
from objectvision_devstack.stack import Stack
from objectvision_devstack.videos import make_video
from objectvision_devstack.waiting import eventually, stays

from .conftest import LIVE_IDLE_SECONDS

IMAGES = (
    Path(os.environ.get("OBJECTVISION_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    / "images"
)
BUS = IMAGES / "bus.jpg"
JOBS = "/api/v1/detect/jobs"
WELCOME_SUBJECT = "Welcome to ObjectVision"
REPORT_SUBJECT_PREFIX = "Your detection job"
# A bound, not the expected time (an event leaves at its commit): the machine may be busy.
ARRIVES_WITHIN_SECONDS = 45.0
# How long to keep watching for an email that should not come.
QUIET_SECONDS = 1.5

pytestmark = pytest.mark.skipif(not BUS.exists(), reason=f"sample images not found under {IMAGES}")


@pytest.fixture
async def client(queued_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=queued_stack.gateway_url, timeout=60.0) as opened:
        yield opened


async def _account(client: httpx.AsyncClient) -> Account:
    return await signed_in(client, prefix="jobs", name="Jobs User")


async def _batch(
    client: httpx.AsyncClient,
    account: Account,
    count: int = 1,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    data = BUS.read_bytes()
    response = await client.post(
        "/api/v1/detect/batch",
        files=[("files", (f"bus-{n}.jpg", data, "image/jpeg")) for n in range(count)],
        data={"metadata": json.dumps(metadata)} if metadata else None,
        headers=account.headers,
    )
    assert response.status_code == 202, response.text
    return response.json()


async def _video(
    client: httpx.AsyncClient,
    account: Account,
    data: bytes,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/detect/video",
        files={"file": ("street.mp4", data, "video/mp4")},
        data={"metadata": json.dumps(metadata)} if metadata else None,
        headers=account.headers,
    )
    assert response.status_code == 202, response.text
    return response.json()


async def _jobs(client: httpx.AsyncClient, account: Account, **params: Any) -> dict[str, Any]:
    response = await client.get(JOBS, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """1 s of bus.jpg at 10 fps, H.264 in MP4."""
    path = tmp_path_factory.mktemp("videos") / "street.mp4"
    return make_video(path, [(BUS, 10)], fps=10).read_bytes()


async def test_a_user_lists_their_jobs_newest_first_filtered_and_paged(
    client: httpx.AsyncClient, clip: bytes
) -> None:
    owner, other = await _account(client), await _account(client)
    first = await _batch(client, owner, count=2)
    video = await _video(client, owner, clip, metadata={"camera": "north-gate"})
    third = await _batch(client, owner)
    theirs = await _batch(client, other)
    cancelled = await client.post(f"{JOBS}/{third['job_id']}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200, cancelled.text

    listed = await _jobs(client, owner)
    assert [job["job_id"] for job in listed["items"]] == [
        third["job_id"],
        video["job_id"],
        first["job_id"],
    ]
    assert (listed["total"], listed["limit"], listed["offset"]) == (3, 20, 0)
    assert [job["status"] for job in listed["items"]] == ["cancelled", "pending", "pending"]
    assert [job["kind"] for job in listed["items"]] == ["batch", "video", "batch"]
    # The single-job shape without the per-image items; a video job keeps its video.
    assert all("items" not in job for job in listed["items"])
    listed_first = listed["items"][2]
    assert (listed_first["total"], listed_first["processed"]) == (2, 0)
    assert listed["items"][1]["video"]["filename"] == "street.mp4"

    async def ids(**params: Any) -> list[str]:
        return [job["job_id"] for job in (await _jobs(client, owner, **params))["items"]]

    assert await ids(status="pending") == [video["job_id"], first["job_id"]]
    assert await ids(status="cancelled") == [third["job_id"]]
    assert await ids(status="completed") == []
    assert await ids(kind="video") == [video["job_id"]]
    assert await ids(kind="batch", status="pending") == [first["job_id"]]
    assert await ids(metadata="camera:north-gate") == [video["job_id"]]
    assert listed["items"][1]["metadata"] == {"camera": "north-gate"}
    assert listed["items"][0]["metadata"] == {}
    page = await _jobs(client, owner, limit=1, offset=1)
    assert [job["job_id"] for job in page["items"]] == [video["job_id"]]
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)

    others = await _jobs(client, other)
    assert [job["job_id"] for job in others["items"]] == [theirs["job_id"]]
    for query in ("status=done", "kind=audio", "limit=101", "offset=-1"):
        api_error_with_request_id(
            await client.get(f"{JOBS}?{query}", headers=owner.headers), 422, "validation_error"
        )
    api_error_with_request_id(await client.get(JOBS), 401, "unauthenticated")


async def test_a_queued_job_is_deleted_only_once_it_is_cancelled(
    client: httpx.AsyncClient, clip: bytes
) -> None:
    """Deleting a job is for finished ones (tests/test_deletion_api.py); a queued one says to
    cancel it first, and once cancelled it goes with its images."""
    owner = await _account(client)
    for job in (await _batch(client, owner, count=2), await _video(client, owner, clip)):
        path = f"{JOBS}/{job['job_id']}"
        refused = api_error_with_request_id(
            await client.delete(path, headers=owner.headers), 409, "failed_precondition"
        )
        assert refused["message"] == (
            f"job {job['job_id']} is still pending; cancel it first, then delete it"
        )
        assert (await client.get(path, headers=owner.headers)).json()["status"] == "pending"

        cancelled = await client.post(f"{path}/cancel", headers=owner.headers)
        assert cancelled.status_code == 200, cancelled.text
        deleted = await client.delete(path, headers=owner.headers)
        assert deleted.status_code == 204, deleted.text
        api_error_with_request_id(await client.get(path, headers=owner.headers), 404, "not_found")
    assert (await _jobs(client, owner))["total"] == 0


def _subjects_to(mailbox: Mailbox, address: str) -> list[str]:
    return [str(message["Subject"]) for message in mailbox.to(address)]


async def _job_messages(stack: Stack, account: Account, job_id: str) -> tuple[list, int | None]:
    """Everything the job's WebSocket sends until the server closes it, and the close code."""
    url = f"{stack.gateway_url.replace('http://', 'ws://')}/api/v1/ws/jobs/{job_id}"
    messages = []
    async with asyncio.timeout(ARRIVES_WITHIN_SECONDS):
        async with connect(url, additional_headers=account.headers) as socket:
            try:
                while True:
                    messages.append(json.loads(await socket.recv()))
            except ConnectionClosed:
                return messages, socket.close_code


async def test_cancelling_a_queued_job_ends_it_for_the_socket_and_webhooks_without_a_report(
    client: httpx.AsyncClient, queued_stack: Stack, hook_receiver: Any
) -> None:
    owner, stranger = await _account(client), await _account(client)
    hook = await client.post(
        "/api/v1/webhooks",
        json={"url": hook_receiver.url, "events": ["job.cancelled"]},
        headers=owner.headers,
    )
    assert hook.status_code == 201, hook.text
    assert hook.json()["events"] == ["job.cancelled"]
    secret = hook.json()["secret"]
    order = {"order": "A-1042", "camera": "north-gate"}
    job = await _batch(client, owner, count=3, metadata=order)
    assert job["metadata"] == order
    cancel_url = f"{JOBS}/{job['job_id']}/cancel"

    # Only the owner: anyone else is told what a missing job tells them.
    api_error_with_request_id(
        await client.post(cancel_url, headers=stranger.headers), 404, "not_found"
    )
    api_error_with_request_id(
        await client.post(f"{JOBS}/{uuid.uuid4()}/cancel", headers=owner.headers),
        404,
        "not_found",
    )
    api_error_with_request_id(await client.post(cancel_url), 401, "unauthenticated")

    response = await client.post(cancel_url, headers=owner.headers)
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert (cancelled["status"], cancelled["total"], cancelled["processed"]) == ("cancelled", 3, 0)
    assert [item["status"] for item in cancelled["items"]] == ["cancelled"] * 3
    assert all(item["detection_id"] is None for item in cancelled["items"])
    assert cancelled["completed_at"] is not None
    again = await client.post(cancel_url, headers=owner.headers)
    assert again.status_code == 200 and again.json() == cancelled
    read = await client.get(f"{JOBS}/{job['job_id']}", headers=owner.headers)
    assert read.json() == cancelled
    history = await client.get("/api/v1/detect/history", headers=owner.headers)
    assert history.json()["total"] == 0

    # The WebSocket of a cancelled job: its final event at once, then a normal close.
    messages, close_code = await _job_messages(queued_stack, owner, job["job_id"])
    assert [m["type"] for m in messages] == ["job.cancelled"]
    final = messages[0]
    assert (final["job_id"], final["status"], final["total"], final["processed"]) == (
        job["job_id"],
        "cancelled",
        3,
        0,
    )
    assert final["metadata"] == order
    assert close_code == 1000

    # The webhook that asked for job.cancelled gets it once, signed.
    (post,) = await eventually(
        hook_receiver.received, within=ARRIVES_WITHIN_SECONDS, what="job.cancelled webhook"
    )
    headers, body = post.headers, post.body
    timestamp = headers["x-objectvision-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert headers["x-objectvision-signature"] == f"v1={expected.hexdigest()}"
    event = json.loads(body)
    assert (event["type"], event["id"]) == ("job.cancelled", final["event_id"])
    assert (event["data"]["job_id"], event["data"]["status"]) == (job["job_id"], "cancelled")
    # The receiver knows which of its own orders this was without asking.
    assert event["data"]["metadata"] == order

    # The event is handled (the webhook came): no report email came with it.
    mailbox = Mailbox(queued_stack.mail_dir)
    await eventually(
        lambda: WELCOME_SUBJECT in _subjects_to(mailbox, owner.email),
        within=ARRIVES_WITHIN_SECONDS,
        what="the welcome email",
    )
    await stays(
        lambda: (
            not any(
                subject.startswith(REPORT_SUBJECT_PREFIX)
                for subject in _subjects_to(mailbox, owner.email)
            )
        ),
        for_seconds=QUIET_SECONDS,
        what="a report email for a cancelled job",
    )
    assert len(hook_receiver.received()) == 1


async def test_the_client_and_the_command_list_and_cancel_jobs(
    client: httpx.AsyncClient, queued_stack: Stack, tmp_path: Path
) -> None:
    account = await _account(client)
    first = await _batch(client, account, count=2)
    second = await _batch(client, account)
    async with AsyncClient(queued_stack.gateway_url, headers=fresh_network()) as api:
        await api.login(account.email, PASSWORD)
        page = await api.list_jobs(status="pending", kind="batch")
        assert [job.job_id for job in page.items] == [second["job_id"], first["job_id"]]
        assert page.total == 2 and all(job.items == () for job in page.items)
        stopped = await api.cancel_job(first["job_id"])
        assert stopped.done and stopped.status == "cancelled"
        assert [item.status for item in stopped.items] == ["cancelled", "cancelled"]
        assert [job.job_id for job in (await api.list_jobs(status="pending")).items] == [
            second["job_id"]
        ]

    created = await client.post(
        "/api/v1/users/me/api-keys", json={"name": "jobs-cli"}, headers=account.headers
    )
    assert created.status_code == 201, created.text

    objectvision = functools.partial(
        CommandLine(queued_stack.gateway_url, tmp_path).run,
        extra_env={"OBJECTVISION_API_KEY": created.json()["secret"]},
    )

    cancelled = await asyncio.to_thread(objectvision, "jobs", "cancel", second["job_id"])
    assert cancelled.stdout.strip() == second["job_id"]
    assert f"Job {second['job_id']} is cancelled: 0 of 1 images" in cancelled.stderr
    table = await asyncio.to_thread(objectvision, "jobs", "list", "--status", "cancelled")
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["ID", "KIND", "STATUS"]
    assert [row.split()[:4] for row in rows] == [
        [second["job_id"], "batch", "cancelled", "0/1"],
        [first["job_id"], "batch", "cancelled", "0/2"],
    ]
    assert "Showing 1-2 of 2." in table.stderr
    listed = json.loads(
        (await asyncio.to_thread(objectvision, "jobs", "list", "--limit", "1", "--json")).stdout
    )
    assert (listed["total"], [job["job_id"] for job in listed["items"]]) == (
        2,
        [second["job_id"]],
    )
    refused = await asyncio.to_thread(objectvision, "jobs", "list", "--kind", "audio", expect=2)
    assert "invalid choice: 'audio'" in refused.stderr


# The queued stack's MAX_UNFINISHED_JOBS_PER_USER (tests/conftest.py).
UNFINISHED_JOBS_PER_ACCOUNT = 4


async def test_an_account_at_its_job_limit_is_refused_and_the_command_names_what_it_sent(
    client: httpx.AsyncClient, queued_stack: Stack, tmp_path: Path
) -> None:
    account = await _account(client)
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(UNFINISHED_JOBS_PER_ACCOUNT + 2):
        (folder / f"{n}-bus.jpg").write_bytes(BUS.read_bytes())
    created = await client.post(
        "/api/v1/users/me/api-keys", json={"name": "limit-cli"}, headers=account.headers
    )
    assert created.status_code == 201, created.text
    objectvision = CommandLine(queued_stack.gateway_url, tmp_path).run
    refused = await asyncio.to_thread(
        objectvision,
        "batch",
        str(folder),
        "--per-job",
        "1",
        expect=1,
        extra_env={"OBJECTVISION_API_KEY": created.json()["secret"]},
    )
    sent = (await _jobs(client, account))["items"]
    assert len(sent) == UNFINISHED_JOBS_PER_ACCOUNT
    ids = ", ".join(job["job_id"] for job in reversed(sent))
    assert f"Submitted {UNFINISHED_JOBS_PER_ACCOUNT} images as jobs {ids}" in refused.stderr
    assert f"the rest, from {folder / '4-bus.jpg'}, were not sent" in refused.stderr
    assert "HTTP 429 too_many_jobs" in refused.stderr and "Try again in 60 s" in refused.stderr

    response = await client.post(
        "/api/v1/detect/batch",
        files=[("files", ("bus.jpg", BUS.read_bytes(), "image/jpeg"))],
        headers=account.headers,
    )
    assert "4 unfinished jobs" in api_error(response, 429, "too_many_jobs")["message"]
    assert response.headers["Retry-After"] == "60"
    cancelled = await client.post(f"{JOBS}/{sent[0]['job_id']}/cancel", headers=account.headers)
    assert cancelled.status_code == 200, cancelled.text
    await _batch(client, account)


# The queued stack's WS_MAX_STREAMS_PER_ACCOUNT (tests/conftest.py).
LIVE_STREAMS_PER_ACCOUNT = 3
STREAMS_CLOSED = "gateway_job_streams_closed_total"


async def test_one_account_holds_a_bounded_number_of_live_job_streams(
    client: httpx.AsyncClient, queued_stack: Stack
) -> None:
    """Each stream holds a gRPC stream while its job runs (here: never ends), so one account
    gets WS_MAX_STREAMS_PER_ACCOUNT of them at once; the next is closed 4429, another account
    is not affected, and closing one frees its place."""
    owner, neighbour = await _account(client), await _account(client)
    job = await _batch(client, owner)
    their_job = await _batch(client, neighbour)
    base = queued_stack.gateway_url.replace("http://", "ws://")
    url = f"{base}/api/v1/ws/jobs/{job['job_id']}"

    async with contextlib.AsyncExitStack() as held, asyncio.timeout(ARRIVES_WITHIN_SECONDS):
        sockets = []
        for _ in range(LIVE_STREAMS_PER_ACCOUNT):
            socket = await held.enter_async_context(connect(url, additional_headers=owner.headers))
            # The job's snapshot arrives once the gateway holds the stream.
            assert json.loads(await socket.recv())["type"] == "job.progress"
            sockets.append(socket)

        refused_before = _gateway_metric(queued_stack, STREAMS_CLOSED, "too_many")
        async with connect(url, additional_headers=owner.headers) as refused:
            with pytest.raises(ConnectionClosed):
                await refused.recv()
        assert refused.close_code == 4429
        assert "already follows 3 jobs live" in (refused.close_reason or "")
        # Operators see it: the refusal counted, the held streams in the gauge.
        refused_after = _gateway_metric(queued_stack, STREAMS_CLOSED, "too_many")
        assert refused_after == refused_before + 1
        assert _gateway_metric(queued_stack, "gateway_job_streams_open") >= LIVE_STREAMS_PER_ACCOUNT

        their_url = f"{base}/api/v1/ws/jobs/{their_job['job_id']}"
        async with connect(their_url, additional_headers=neighbour.headers) as theirs:
            assert json.loads(await theirs.recv())["type"] == "job.progress"

        await sockets[0].close()
        # The gateway frees the place once it sees the close; until then, 4429.
        for _attempt in range(100):
            if await _stream_accepted(url, owner):
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("closing a stream did not free its place")


def _gateway_metric(
    stack: Stack, name: str, reason: str | None = None, *, label: str = "reason"
) -> float:
    """One sample of the gateway's /metrics (of the `label` label's value `reason`, where
    given); 0 if absent."""
    text = httpx.get(f"{stack.gateway_metrics_url}/metrics", timeout=10).text
    wanted = f'{name}{{{label}="{reason}"}}' if reason else name
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample == wanted:
            return float(value)
    return 0.0


async def _stream_accepted(url: str, account: Account) -> bool:
    """Whether a new stream of `account` gets the job's snapshot (not a 4429)."""
    async with connect(url, additional_headers=account.headers) as socket:
        try:
            return json.loads(await socket.recv())["type"] == "job.progress"
        except ConnectionClosed:
            return False


async def test_a_live_stream_closes_once_its_session_ends_or_its_key_is_revoked(
    client: httpx.AsyncClient, queued_stack: Stack
) -> None:
    """The credential is checked again while the stream lives (every second on this stack):
    a logout closes the session's stream, a revoked key its own, with 4401; a stream whose
    credential still works stays open."""
    owner = await _account(client)
    job = await _batch(client, owner)
    created = await client.post(
        "/api/v1/users/me/api-keys",
        json={"name": "watcher", "scopes": ["results:read"]},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    key = created.json()
    url = f"{queued_stack.gateway_url.replace('http://', 'ws://')}/api/v1/ws/jobs/{job['job_id']}"

    async with (
        asyncio.timeout(ARRIVES_WITHIN_SECONDS),
        connect(url, additional_headers=owner.headers) as by_session,
        connect(url, additional_headers={"X-API-Key": key["secret"]}) as by_key,
    ):
        for socket in (by_session, by_key):
            assert json.loads(await socket.recv())["type"] == "job.progress"

        revoked = await client.delete(
            f"/api/v1/users/me/api-keys/{key['id']}", headers=owner.headers
        )
        assert revoked.status_code == 204, revoked.text
        with pytest.raises(ConnectionClosed):
            await by_key.recv()
        assert (by_key.close_code, by_key.close_reason) == (4401, "the credential was revoked")
        assert _gateway_metric(queued_stack, STREAMS_CLOSED, "revoked") >= 1
        # The session's stream outlived the key's.
        assert by_session.close_code is None

        logout = await client.post(
            "/api/v1/auth/logout",
            json={"refresh_token": owner.refresh_token},
            headers=owner.headers,
        )
        assert logout.status_code == 204, logout.text
        with pytest.raises(ConnectionClosed):
            await by_session.recv()
        assert by_session.close_code == 4401


async def test_live_detection_streams_share_the_stream_cap_and_end_when_their_key_is_revoked(
    client: httpx.AsyncClient, queued_stack: Stack
) -> None:
    """A live detection stream (ADR 0059) holds a DetectStream as a job stream holds its
    subscription: both kinds count against WS_MAX_STREAMS_PER_ACCOUNT together, and the live
    stream's credential is checked again while it lives, as a job stream's is."""
    owner = await _account(client)
    job = await _batch(client, owner)
    created = await client.post(
        "/api/v1/users/me/api-keys",
        json={"name": "camera", "scopes": ["detect"]},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    key = created.json()
    base = queued_stack.gateway_url.replace("http://", "ws://")
    job_url, live_url = f"{base}/api/v1/ws/jobs/{job['job_id']}", f"{base}/api/v1/ws/detect"
    detected_before = _gateway_metric(
        queued_stack, "gateway_live_detect_frames_total", "detected", label="outcome"
    )

    async with contextlib.AsyncExitStack() as held, asyncio.timeout(ARRIVES_WITHIN_SECONDS):
        for _ in range(LIVE_STREAMS_PER_ACCOUNT - 1):
            socket = await held.enter_async_context(
                connect(job_url, additional_headers=owner.headers)
            )
            assert json.loads(await socket.recv())["type"] == "job.progress"
        live = await held.enter_async_context(
            connect(live_url, additional_headers={"X-API-Key": key["secret"]})
        )
        await live.send("{}")
        assert json.loads(await live.recv())["type"] == "ready"
        await live.send(BUS.read_bytes())
        answer = json.loads(await live.recv())
        assert (answer["type"], answer["sequence"], answer["counts"]["bus"]) == ("detections", 1, 1)
        assert _gateway_metric(queued_stack, "gateway_live_detect_streams_open") >= 1
        assert (
            _gateway_metric(
                queued_stack, "gateway_live_detect_frames_total", "detected", label="outcome"
            )
            == detected_before + 1
        )

        # The account's third stream was the live one: a fourth of either kind is refused.
        async with connect(live_url, additional_headers=owner.headers) as refused:
            said = json.loads(await refused.recv())
            with pytest.raises(ConnectionClosed):
                await refused.recv()
        assert (said["type"], said["code"]) == ("error", "too_many_streams")
        assert refused.close_code == 4429
        assert not await _stream_accepted(job_url, owner)

        revoked = await client.delete(
            f"/api/v1/users/me/api-keys/{key['id']}", headers=owner.headers
        )
        assert revoked.status_code == 204, revoked.text
        said = json.loads(await live.recv())
        with pytest.raises(ConnectionClosed):
            await live.recv()
        assert (said["type"], said["code"]) == ("error", "unauthenticated")
        assert (live.close_code, live.close_reason) == (4401, "the credential was revoked")
        assert (
            _gateway_metric(queued_stack, "gateway_live_detect_streams_closed_total", "revoked")
            >= 1
        )


async def test_a_live_detection_stream_without_frames_is_ended_once_idle(
    client: httpx.AsyncClient, queued_stack: Stack
) -> None:
    """No frame for WS_DETECT_IDLE_SECONDS (this stack: LIVE_IDLE_SECONDS): the frame sent
    is answered, then the stream is ended with `stream_idle` and 4408, its place freed."""
    owner = await _account(client)
    url = f"{queued_stack.gateway_url.replace('http://', 'ws://')}/api/v1/ws/detect"
    async with (
        asyncio.timeout(LIVE_IDLE_SECONDS + ARRIVES_WITHIN_SECONDS),
        connect(url, additional_headers=owner.headers) as live,
    ):
        await live.send("{}")
        assert json.loads(await live.recv())["type"] == "ready"
        await live.send(BUS.read_bytes())
        answer = json.loads(await live.recv())
        said = json.loads(await live.recv())
        with pytest.raises(ConnectionClosed):
            await live.recv()
    assert (answer["type"], answer["sequence"]) == ("detections", 1)
    assert (said["type"], said["code"]) == ("error", "stream_idle")
    assert f"no frame for {LIVE_IDLE_SECONDS} s" in said["message"]
    assert live.close_code == 4408


async def test_jobs_are_found_by_their_metadata_through_rest_the_client_and_the_command(
    client: httpx.AsyncClient, queued_stack: Stack, tmp_path: Path
) -> None:
    account = await _account(client)
    north = {"camera": "north-gate"}
    by_form = await _batch(client, account, metadata={**north, "shift": "night"})
    by_json = await client.post(
        "/api/v1/detect/batch",
        json={
            "images": [{"image_base64": base64.b64encode(BUS.read_bytes()).decode()}],
            "metadata": {**north, "shift": "day"},
        },
        headers=account.headers,
    )
    assert by_json.status_code == 202, by_json.text
    assert by_json.json()["metadata"] == {**north, "shift": "day"}
    read = await client.get(f"{JOBS}/{by_form['job_id']}", headers=account.headers)
    assert read.json()["metadata"] == {**north, "shift": "night"}

    async def ids(*pairs: str) -> list[str]:
        listed = await _jobs(client, account, metadata=list(pairs))
        return [job["job_id"] for job in listed["items"]]

    both = [by_json.json()["job_id"], by_form["job_id"]]
    assert await ids("camera:north-gate") == both
    assert await ids("camera:north-gate", "shift:night") == [by_form["job_id"]]
    assert await ids("camera:south-gate") == []

    # Refused with what is wrong, and nothing stored.
    for form, where in (
        ('{"camera": ', "is not valid JSON"),
        ('{"camera id": "1"}', "camera id"),
        ('{"camera": 3}', "camera"),
        ('["camera"]', "metadata"),
    ):
        response = await client.post(
            "/api/v1/detect/batch",
            files=[("files", ("bus.jpg", BUS.read_bytes(), "image/jpeg"))],
            data={"metadata": form},
            headers=account.headers,
        )
        api_error(response, 422, "validation_error")
        assert where in response.text, (form, response.text)
    for query in ("metadata=camera", "metadata=a:1&metadata=a:2", "metadata=camera%20id:1"):
        api_error_with_request_id(
            await client.get(f"{JOBS}?{query}", headers=account.headers), 422, "validation_error"
        )
    # One image's metadata is kept with its stored detection: with store=false, none is.
    one = await client.post(
        "/api/v1/detect/image",
        files={"file": ("bus.jpg", BUS.read_bytes(), "image/jpeg")},
        data={"metadata": '{"camera": "north-gate"}', "store": "false"},
        headers=account.headers,
    )
    api_error(one, 422, "validation_error")
    assert "store=true" in one.text
    assert (await _jobs(client, account))["total"] == 2

    async with AsyncClient(queued_stack.gateway_url, headers=fresh_network()) as api:
        await api.login(account.email, PASSWORD)
        page = await api.list_jobs(metadata={"shift": "day"})
        assert [job.job_id for job in page.items] == [both[0]]
        assert page.items[0].metadata == {**north, "shift": "day"}

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "bus.jpg").write_bytes(BUS.read_bytes())
    created = await client.post(
        "/api/v1/users/me/api-keys", json={"name": "metadata-cli"}, headers=account.headers
    )
    objectvision = functools.partial(
        CommandLine(queued_stack.gateway_url, tmp_path).run,
        extra_env={"OBJECTVISION_API_KEY": created.json()["secret"]},
    )
    sent = await asyncio.to_thread(
        objectvision, "batch", str(folder), "--meta", "camera=south-gate", "--meta", "lane=2"
    )
    job_id = sent.stdout.strip()
    shown = await asyncio.to_thread(objectvision, "jobs", "show", job_id)
    assert "Metadata: camera=south-gate, lane=2" in shown.stderr
    listed = json.loads(
        (
            await asyncio.to_thread(
                objectvision, "jobs", "list", "--meta", "camera=south-gate", "--json"
            )
        ).stdout
    )
    assert [job["job_id"] for job in listed["items"]] == [job_id]
    twice = await asyncio.to_thread(
        objectvision, "jobs", "list", "--meta", "a=1", "--meta", "a=2", expect=2
    )
    assert "--meta a=... is given twice" in twice.stderr
    for job in (job_id, *both):
        await client.post(f"{JOBS}/{job}/cancel", headers=account.headers)


async def test_a_job_is_run_again_with_another_model_through_rest_the_client_and_the_command(
    client: httpx.AsyncClient, queued_stack: Stack, tmp_path: Path, clip: bytes
) -> None:
    """A queued job's images are stored at submission, so it can be run again at once; its
    reruns stay queued here too (no workers), and each is cancelled to stay under the
    account's limit of unfinished jobs."""
    account = await _account(client)
    source = await _batch(client, account, count=2, metadata={"camera": "north"})
    rerun_url = f"{JOBS}/{source['job_id']}/rerun"

    int8 = await client.post(f"{rerun_url}?model=yolov8n-int8", headers=account.headers)
    assert int8.status_code == 202, int8.text
    rerun = int8.json()
    assert int8.headers["location"] == f"{JOBS}/{rerun['job_id']}"
    assert (rerun["rerun_of"], rerun["model"], rerun["total"]) == (
        source["job_id"],
        "yolov8n-int8",
        2,
    )
    assert [item["filename"] for item in rerun["items"]] == ["bus-0.jpg", "bus-1.jpg"]
    assert rerun["metadata"] == {"camera": "north"} and source["rerun_of"] is None
    await client.post(f"{JOBS}/{rerun['job_id']}/cancel", headers=account.headers)

    keyed = {**account.headers, "Idempotency-Key": "rerun-south"}
    body = {"confidence": 0.6, "classes": "person", "metadata": {"camera": "south"}}
    first = await client.post(rerun_url, json=body, headers=keyed)
    again = await client.post(rerun_url, json=body, headers=keyed)
    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["job_id"] == again.json()["job_id"]
    assert first.json()["metadata"] == {"camera": "south"}
    await client.post(f"{JOBS}/{first.json()['job_id']}/cancel", headers=account.headers)

    api_error(
        await client.post(rerun_url, content=b"model=x", headers=account.headers),
        415,
        "unsupported_media_type",
    )
    for wrong in ({"confidence": 2}, {"colour": "red"}):
        api_error(await client.post(rerun_url, json=wrong, headers=account.headers), 422)
    unknown = api_error(
        await client.post(f"{rerun_url}?model=yolov9-huge", headers=account.headers),
        404,
        "unknown_model",
    )
    assert "yolov8n" in unknown["message"]
    stranger = await signed_in(client, prefix="jobs", name="Someone Else")
    api_error(await client.post(rerun_url, headers=stranger.headers), 404, "not_found")
    video = await _video(client, stranger, clip, metadata={"camera": "gate"})
    again = await client.post(f"{JOBS}/{video['job_id']}/rerun", headers=stranger.headers)
    assert again.status_code == 202, again.text
    video_rerun = again.json()
    assert (video_rerun["kind"], video_rerun["rerun_of"], video_rerun["metadata"]) == (
        "video",
        video["job_id"],
        {"camera": "gate"},
    )
    assert video_rerun["video"]["filename"] == "street.mp4"
    assert video_rerun["video"]["sampling"] == video["video"]["sampling"]

    async with AsyncClient(queued_stack.gateway_url, headers=fresh_network()) as api:
        await api.login(account.email, PASSWORD)
        by_client = await api.rerun_job(source["job_id"], DetectionParams(model="yolov8n-int8"))
        assert (by_client.rerun_of, by_client.model) == (source["job_id"], "yolov8n-int8")
        await api.cancel_job(by_client.job_id)

    created = await client.post(
        "/api/v1/users/me/api-keys", json={"name": "rerun-cli"}, headers=account.headers
    )
    objectvision = functools.partial(
        CommandLine(queued_stack.gateway_url, tmp_path).run,
        extra_env={"OBJECTVISION_API_KEY": created.json()["secret"]},
    )
    ran = await asyncio.to_thread(
        objectvision, "jobs", "rerun", source["job_id"], "--model", "yolov8n-int8"
    )
    by_command = ran.stdout.strip()
    assert (
        f"Submitted job {by_command}: the 2 images of job {source['job_id']} again,"
        " with yolov8n-int8." in ran.stderr
    )
    shown = await asyncio.to_thread(objectvision, "jobs", "show", by_command)
    assert f"Ran again from job {source['job_id']}" in shown.stderr
    reruns = json.loads(
        (
            await asyncio.to_thread(
                objectvision, "jobs", "list", "--rerun-of", source["job_id"], "--json"
            )
        ).stdout
    )
    assert [job["job_id"] for job in reruns["items"]] == [
        by_command,
        by_client.job_id,
        first.json()["job_id"],
        rerun["job_id"],
    ]
    api_error(
        await client.get(JOBS, params={"rerun_of": "last-week"}, headers=account.headers), 422
    )
    for job in (by_command, source["job_id"]):
        await client.post(f"{JOBS}/{job}/cancel", headers=account.headers)
    for job in (video["job_id"], video_rerun["job_id"]):
        await client.post(f"{JOBS}/{job}/cancel", headers=stranger.headers)


async def test_stored_detections_the_history_keeps_run_again_as_a_job(
    client: httpx.AsyncClient, queued_stack: Stack, tmp_path: Path
) -> None:
    """ADR 0058: the history's filters (query) choose the stored images, the JSON body the
    detection options and the new job's metadata; through REST, the client and the command."""
    account = await _account(client)
    for name, camera in (("n1.jpg", "north"), ("n2.jpg", "north"), ("s1.jpg", "south")):
        stored = await client.post(
            "/api/v1/detect/image",
            files={"file": (name, BUS.read_bytes(), "image/jpeg")},
            data={"metadata": json.dumps({"camera": camera})},
            headers=account.headers,
        )
        assert stored.status_code == 200, stored.text
    rerun_url = "/api/v1/detect/history/rerun"

    north = await client.post(
        rerun_url,
        params={"metadata": "camera:north"},
        json={"model": "yolov8n-int8", "metadata": {"trial": "int8"}},
        headers=account.headers,
    )
    assert north.status_code == 202, north.text
    job = north.json()
    assert north.headers["location"] == f"{JOBS}/{job['job_id']}"
    assert [item["filename"] for item in job["items"]] == ["n1.jpg", "n2.jpg"]
    assert (job["model"], job["metadata"], job["rerun_of"]) == (
        "yolov8n-int8",
        {"trial": "int8"},
        None,
    )
    await client.post(f"{JOBS}/{job['job_id']}/cancel", headers=account.headers)

    nothing = api_error(
        await client.post(rerun_url, params={"metadata": "camera:east"}, headers=account.headers),
        409,
    )
    assert "no stored detection" in nothing["message"]
    api_error(
        await client.post(rerun_url, content=b"model=x", headers=account.headers),
        415,
        "unsupported_media_type",
    )

    async with AsyncClient(queued_stack.gateway_url, headers=fresh_network()) as api:
        await api.login(account.email, PASSWORD)
        south = await api.rerun_history(
            DetectionParams(confidence=0.5), metadata={"camera": "south"}
        )
        assert [item.filename for item in south.items] == ["s1.jpg"]
        await api.cancel_job(south.job_id)

    created = await client.post(
        "/api/v1/users/me/api-keys", json={"name": "history-rerun-cli"}, headers=account.headers
    )
    objectvision = functools.partial(
        CommandLine(queued_stack.gateway_url, tmp_path).run,
        extra_env={"OBJECTVISION_API_KEY": created.json()["secret"]},
    )
    ran = await asyncio.to_thread(
        objectvision, "history", "--meta", "camera=north", "rerun", "--model", "yolov8n-int8"
    )
    assert (
        f"Submitted job {ran.stdout.strip()}: the 2 stored images matching metadata"
        " camera=north, with yolov8n-int8." in ran.stderr
    )
    await client.post(f"{JOBS}/{ran.stdout.strip()}/cancel", headers=account.headers)
