"""The real `objectvision` command (client/), run as a subprocess against the running stack.

Nothing is mocked: the console script installed next to this interpreter talks HTTP to the
gateway started by `stack` (tests/conftest.py), which runs the real services and Triton. Each
invocation gets its own XDG_CONFIG_HOME, so saved sessions never touch the developer's own.
Sign-ups go through the client library with their own X-Forwarded-For address, as in
test_auth_api.py, so the per-IP sign-up limit is never shared.
"""

import asyncio
import csv
import io
import json
import os
import stat
import time
import uuid
import zipfile
from collections import Counter
from pathlib import Path

import cv2
import pytest

from objectvision_client import (
    AsyncClient,
    Client,
    DetectionParams,
    ObjectVisionError,
    RetryPolicy,
    TokenPair,
)
from objectvision_client.webhooks import verify
from objectvision_devstack.api_users import fresh_network
from objectvision_devstack.command_line import COMMAND, CommandLine
from objectvision_devstack.image_server import image_server
from objectvision_devstack.stack import Stack

# The slow tier (make test-slow): the real command against the whole stack, where client/tests
# hold the same commands to the API's answers on a local stand-in; make test stays under 15
# minutes.
pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES = Path(os.environ.get("OBJECTVISION_SHARED_DIR", REPO_ROOT.parent / "shared")) / "images"
BUS = IMAGES / "bus.jpg"
COCO8 = IMAGES / "coco8" / "images"
PASSWORD = "correct horse battery"
# Enough to reach any sane login limit (the default is 10 a minute).
MAX_LOGIN_ATTEMPTS = 200


def _sign_up(stack: Stack) -> str:
    email = f"cli-{uuid.uuid4().hex}@example.com"
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.signup(email, PASSWORD, "CLI Test")
    return email


def _new_cli(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> CommandLine:
    return CommandLine(stack.gateway_url, tmp_path_factory.mktemp("xdg-config"))


@pytest.fixture(scope="module")
def email(stack: Stack) -> str:
    return _sign_up(stack)


@pytest.fixture(scope="module")
def cli(stack: Stack, email: str, tmp_path_factory: pytest.TempPathFactory) -> CommandLine:
    """Logged in once for the module through `objectvision login`."""
    logged_in = _new_cli(stack, tmp_path_factory)
    result = logged_in.run("login", "--email", email, "--password", PASSWORD)
    assert f"as {email}" in result.stderr
    return logged_in


@pytest.fixture(scope="module")
def batch_job(cli: CommandLine) -> dict:
    """coco8's eight images submitted as one job and waited for."""
    result = cli.run("batch", str(COCO8), "--recursive", "--wait", "--json")
    assert "100%" in result.stderr, result.stderr
    return json.loads(result.stdout)


def test_command_is_installed_next_to_the_interpreter() -> None:
    assert COMMAND.is_file(), f"{COMMAND} is missing: is objectvision-client installed?"


def test_login_saves_a_private_session(cli: CommandLine, email: str) -> None:
    assert stat.S_IMODE(cli.credentials.stat().st_mode) == 0o600
    saved = json.loads(cli.credentials.read_text())["sessions"][cli.api_url]
    assert saved["email"] == email
    assert saved["access_token"] and saved["refresh_token"]
    assert PASSWORD not in cli.credentials.read_text()
    assert cli.json("whoami")["email"] == email


def test_detect_bus_finds_four_people_and_a_bus(cli: CommandLine) -> None:
    results = cli.json("detect", str(BUS))
    assert len(results) == 1
    result = results[0]
    assert result["file"] == str(BUS)
    assert result["image"] == {"width": 810, "height": 1080}
    classes = Counter(obj["class"] for obj in result["detections"])
    assert classes == {"person": 4, "bus": 1}
    bus = next(obj for obj in result["detections"] if obj["class"] == "bus")
    assert bus["confidence"] == pytest.approx(0.83, abs=0.05)
    assert result["detection_id"]


def test_detect_sends_an_http_url_for_the_server_to_fetch(cli: CommandLine) -> None:
    """Nothing is uploaded: the gateway fetches the image (the stack allows 127.0.0.1)."""
    with image_server({"bus.jpg": BUS.read_bytes()}) as host:
        url = f"{host.url}/redirect/1/files/bus.jpg"
        (result,) = cli.json("detect", url, "--classes", "bus")
        fetched = [request.path for request in host.received()]
        missing = cli.run("detect", f"{host.url}/files/gone.jpg", expect=1)
    assert result["file"] == url and result["filename"] == "bus.jpg"
    assert [obj["class"] for obj in result["detections"]] == ["bus"]
    assert fetched == ["/redirect/1/files/bus.jpg", "/files/bus.jpg"]
    assert "the image URL answered 404 Not Found" in missing.stderr


def test_detect_table_applies_confidence_and_classes(cli: CommandLine) -> None:
    table = cli.run("detect", str(BUS), "--table", "--classes", "bus", "--confidence", "0.5")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["FILE", "CLASS", "CONFIDENCE", "X1", "Y1", "X2", "Y2"]
    assert [line.split()[1] for line in lines[1:]] == ["bus"]


def test_annotate_writes_a_jpeg(cli: CommandLine, tmp_path: Path) -> None:
    outdir = tmp_path / "annotated"
    result = cli.run("detect", str(BUS), "--annotate", str(outdir))
    written = outdir / "bus.annotated.jpg"
    assert f"Wrote {written}" in result.stderr
    data = written.read_bytes()
    assert data[:3] == b"\xff\xd8\xff", "not a JPEG"
    assert data.rstrip(b"\x00")[-2:] == b"\xff\xd9"
    assert len(data) > 10_000


def test_batch_over_coco8_waits_for_every_image(batch_job: dict) -> None:
    expected = sorted(path.name for path in COCO8.rglob("*.jpg"))
    assert len(expected) == 8
    assert batch_job["status"] == "completed"
    assert (batch_job["total"], batch_job["processed"], batch_job["failed"]) == (8, 8, 0)
    assert sorted(item["filename"] for item in batch_job["items"]) == expected
    assert all(
        item["status"] == "completed" and item["detection_id"] for item in batch_job["items"]
    )


def test_a_large_folder_becomes_several_jobs_behind_one_progress_bar(
    cli: CommandLine, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, path in enumerate(sorted(COCO8.rglob("*.jpg"))[:5]):
        (folder / f"{index}-{path.name}").write_bytes(path.read_bytes())
    (folder / "notes.txt").write_text("not an image")
    result = cli.run("batch", str(folder), "--per-job", "2", "--wait", "--json")
    jobs = json.loads(result.stdout)
    assert [job["total"] for job in jobs] == [2, 2, 1]
    assert all(job["status"] == "completed" for job in jobs)
    assert f"Skipped {folder / 'notes.txt'}: not a JPEG, PNG, WebP or BMP" in result.stderr
    assert "3 jobs" in result.stderr and "100%" in result.stderr


def test_a_file_given_for_a_folder_is_named_as_such(cli: CommandLine) -> None:
    result = cli.run("batch", str(IMAGES / "bus.jpg"), expect=1)
    assert "is a file: give the folder that holds the images" in result.stderr


def test_usage_shows_the_months_images_and_each_day(cli: CommandLine, batch_job: dict) -> None:
    """The module's account has run coco8 as a job; the other tests' detects come and go."""
    usage = cli.json("usage", "--days", "1")
    (today,) = usage["days"]
    assert today["jobs"] >= len(batch_job["items"]) == 8
    assert today["images"] == today["calls"] + today["jobs"]
    assert usage["month_images"] >= today["images"]
    summary, header, *_ = cli.run("usage").stdout.splitlines()
    assert "images (no quota); the count starts again on" in summary
    assert header.split() == ["DATE", "CALLS", "JOBS", "IMAGES"]


def test_retention_shows_the_accounts_period(cli: CommandLine) -> None:
    """RETENTION_DAYS is 0 on the test stack and nobody set this account's own period."""
    retention = cli.json("retention")
    assert (retention["days"], retention["custom"], retention["default_days"]) == (0, False, 0)
    assert cli.run("retention").stdout.strip() == (
        "Finished jobs and detections outside jobs are kept until deleted"
        " (the deployment's default)"
    )


def test_jobs_watch_reports_a_finished_job(cli: CommandLine, batch_job: dict) -> None:
    result = cli.run("jobs", "watch", batch_job["job_id"])
    assert "100%" in result.stderr
    assert f"Job {batch_job['job_id']} completed" in result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["FILE", "STATUS", "OBJECTS"]


def test_jobs_list_shows_the_finished_batch_and_a_finished_job_cannot_be_cancelled(
    cli: CommandLine, batch_job: dict
) -> None:
    completed = cli.json("jobs", "list", "--status", "completed", "--kind", "batch")
    assert batch_job["job_id"] in [job["job_id"] for job in completed["items"]]
    assert {job["status"] for job in completed["items"]} == {"completed"}
    assert all("items" not in job for job in completed["items"])
    table = cli.run("jobs", "list", "--status", "completed")
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[1:]}
    assert rows[batch_job["job_id"]][1:4] == ["batch", "completed", "8/8"]

    refused = cli.run("jobs", "cancel", batch_job["job_id"], expect=1)
    assert "has already completed" in refused.stderr
    assert "(HTTP 409 failed_precondition" in refused.stderr
    shown = cli.json("jobs", "show", batch_job["job_id"])
    assert shown["status"] == "completed"
    # What it found, per class, most first: the same counts as its items' objects add up to.
    assert sum(shown["class_counts"].values()) == sum(i["object_count"] for i in shown["items"])
    most = min(shown["class_counts"].items(), key=lambda item: (-item[1], item[0]))
    said = cli.run("jobs", "show", batch_job["job_id"]).stderr
    assert f"Objects: {most[0]} {most[1]}" in said


def test_history_lists_the_batch_with_paging(cli: CommandLine, batch_job: dict) -> None:
    page = cli.json("history", "--limit", "50")
    listed = {item["detection_id"] for item in page["items"]}
    assert {item["detection_id"] for item in batch_job["items"]} <= listed
    assert page["total"] >= 8

    first = cli.json("history", "--limit", "3", "--offset", "0")["items"]
    second = cli.json("history", "--limit", "3", "--offset", "3")["items"]
    assert len(first) == len(second) == 3
    assert not {i["detection_id"] for i in first} & {i["detection_id"] for i in second}

    table = cli.run("history", "--limit", "50")
    assert table.stdout.splitlines()[0].split() == ["ID", "CREATED", "FILE", "OBJECTS", "CLASSES"]
    for item in batch_job["items"]:
        assert item["filename"] in table.stdout
    assert f"of {page['total']}" in table.stderr

    # The name search: every name found holds the text, in any case, and none is missed.
    wanted = batch_job["items"][0]["filename"].removesuffix(".jpg")
    named = cli.json("history", "--name", wanted.upper(), "--limit", "50")
    found = {item["detection_id"] for item in named["items"]}
    holding = {item["detection_id"] for item in page["items"] if wanted in item["filename"]}
    assert found == holding and batch_job["items"][0]["detection_id"] in found


def test_keys_create_list_use_and_revoke(cli: CommandLine) -> None:
    name = f"ci-{uuid.uuid4().hex[:6]}"
    created = cli.run("keys", "create", name)
    secret = created.stdout.strip()
    assert secret.startswith("ov_")
    assert "not shown again" in created.stderr

    keys = {key["name"]: key for key in cli.json("keys", "list")}
    assert keys[name]["revoked_at"] is None
    assert name in cli.run("keys", "list").stdout

    # The key works on its own, without the saved session.
    with_key = {"OBJECTVISION_API_KEY": secret, "XDG_CONFIG_HOME": "/nonexistent"}
    cli.run("history", "--limit", "1", extra_env=with_key)

    revoked = cli.run("keys", "revoke", keys[name]["id"])
    assert "revoked" in revoked.stderr
    assert {key["name"]: key for key in cli.json("keys", "list")}[name]["revoked_at"]
    refused = cli.run("history", "--limit", "1", expect=1, extra_env=with_key)
    assert "HTTP 401" in refused.stderr and "Check OBJECTVISION_API_KEY" in refused.stderr


def test_keys_create_with_scopes_and_a_lifetime_and_what_such_a_key_is_refused(
    cli: CommandLine,
) -> None:
    name = f"edge-{uuid.uuid4().hex[:6]}"
    options = ["--scope", "results:read", "--scope", "detect", "--expires-in-days", "30"]
    created = cli.json("keys", "create", name, *options)
    assert isinstance(created, dict)
    assert created["scopes"] == ["detect", "results:read"] and created["expires_at"]
    [row] = [line for line in cli.run("keys", "list").stdout.splitlines() if name in line]
    assert "detect, results:read" in row and "never" not in row and "active" in row

    with_key = {"OBJECTVISION_API_KEY": created["secret"], "XDG_CONFIG_HOME": "/nonexistent"}
    cli.run("history", "--limit", "1", extra_env=with_key)
    lacking = cli.run("webhooks", "list", expect=1, extra_env=with_key)
    assert "'webhooks' scope" in lacking.stderr and "--scope" in lacking.stderr
    assert "(HTTP 403 insufficient_scope" in lacking.stderr
    account = cli.run("keys", "create", "successor", expect=1, extra_env=with_key)
    assert "needs a logged-in session" in account.stderr and "objectvision login" in account.stderr
    assert "(HTTP 403 session_required" in account.stderr

    assert (
        "invalid choice: 'admin'"
        in cli.run("keys", "create", "x", "--scope", "admin", expect=2).stderr
    )
    too_long = cli.run("keys", "create", "x", "--expires-in-days", "366", expect=2)
    assert "more than 365 days" in too_long.stderr


def test_webhooks_deliveries_are_listed_and_redelivered(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory, hook_receiver
) -> None:
    """`webhooks list`, `webhooks deliveries ID` and `webhooks redeliver ID DELIVERY_ID`, for a
    user of its own whose one-image job sent a job.completed webhook."""
    url = hook_receiver.url
    email = _sign_up(stack)
    cli = _new_cli(stack, tmp_path_factory)
    cli.run("login", "--email", email, "--password", PASSWORD)
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.login(email, PASSWORD)
        hook = client.create_webhook(url, ["job.completed"])
        job = client.wait_for_job(client.submit_batch([BUS]).job_id, timeout=120)
    assert job.status == "completed"
    assert [listed["id"] for listed in cli.json("webhooks", "list")] == [hook.id]
    header, row = cli.run("webhooks", "list").stdout.splitlines()
    assert header.split()[-2:] == ["MADE", "WITH"] and row.split()[-1] == "session"

    def delivered() -> list[dict]:
        page = cli.json("webhooks", "deliveries", hook.id, "--state", "delivered")
        assert isinstance(page, dict)
        return page["items"]

    deadline = time.monotonic() + 60
    while not (items := delivered()):
        assert time.monotonic() < deadline, "the job.completed webhook was never delivered"
        time.sleep(0.5)
    [delivery] = items
    assert (delivery["event_type"], delivery["attempts"], delivery["last_status_code"]) == (
        "job.completed",
        1,
        200,
    )
    table = cli.run("webhooks", "deliveries", hook.id)
    assert delivery["id"] in table.stdout and "delivered" in table.stdout
    assert "Showing 1-1 of 1." in table.stderr

    redelivered = cli.run("webhooks", "redeliver", hook.id, delivery["id"])
    queued = redelivered.stdout.strip()
    assert queued != delivery["id"] and delivery["event_id"] in redelivered.stderr
    deadline = time.monotonic() + 60
    while len(hook_receiver.received()) < 2:
        assert time.monotonic() < deadline, "the redelivery never arrived"
        time.sleep(0.2)
    first, again = hook_receiver.received()
    assert again.body == first.body and json.loads(again.body)["id"] == delivery["event_id"]
    assert again.headers["x-objectvision-delivery"] == queued
    assert first.headers["x-objectvision-delivery"] == delivery["id"]
    newest = cli.json("webhooks", "deliveries", hook.id, "--limit", "1")
    assert [item["redelivery_of"] for item in newest["items"]] == [delivery["id"]]
    assert newest["total"] == 2

    missing = cli.run("webhooks", "redeliver", hook.id, str(uuid.uuid4()), expect=1)
    assert "no such delivery" in missing.stderr and "HTTP 404" in missing.stderr
    assert (
        "invalid choice"
        in cli.run("webhooks", "deliveries", hook.id, "--state", "failed", expect=2).stderr
    )


# About 10 s of webhook round trips, whose rules notification-service
# tests/test_webhook_lifecycle.py checks in make test; this is the command line end to end.
def test_a_webhook_is_changed_disabled_pinged_and_enabled_again(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory, hook_receiver
) -> None:
    """`webhooks update` changes a webhook's events and disables it (ADR 0046): a job's event
    meanwhile is kept as a dead delivery, not sent, and cannot be redelivered; `webhooks ping
    --wait` tries the receiver all the same and says how it answered; `webhooks update
    --enable` turns it back on and the missed event is redelivered. A receiver that fails
    leaves `ping --wait` waiting only as long as asked."""
    email = _sign_up(stack)
    cli = _new_cli(stack, tmp_path_factory)
    cli.run("login", "--email", email, "--password", PASSWORD)
    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.login(email, PASSWORD)
        hook = client.create_webhook(hook_receiver.url, ["job.completed"])

    changed = cli.json(
        "webhooks", "update", hook.id, "--event", "job.completed", "--event", "job.failed"
    )
    assert changed["events"] == ["job.completed", "job.failed"]
    assert (changed["enabled"], changed["disabled_reason"]) == (True, None)
    disabled = cli.run("webhooks", "update", hook.id, "--disable")
    assert f"Webhook {hook.id} for {hook_receiver.url}: disabled (owner)" in disabled.stderr
    [listed] = cli.json("webhooks", "list")
    assert (listed["enabled"], listed["disabled_reason"]) == (False, "owner")
    assert listed["disabled_at"] is not None
    header, row = cli.run("webhooks", "list").stdout.splitlines()
    assert "STATE" in header.split() and "disabled (owner)" in row

    with Client(stack.gateway_url, headers=fresh_network()) as client:
        client.login(email, PASSWORD)
        job = client.wait_for_job(client.submit_batch([BUS]).job_id, timeout=120)
    assert job.status == "completed"
    deadline = time.monotonic() + 60
    while not (missed := cli.json("webhooks", "deliveries", hook.id, "--state", "dead")["items"]):
        assert time.monotonic() < deadline, "the disabled webhook's job.completed was not kept"
        time.sleep(0.5)
    [missed_delivery] = missed
    assert missed_delivery["event_type"] == "job.completed"
    assert missed_delivery["last_error"] == "the webhook is disabled"
    refused = cli.run("webhooks", "redeliver", hook.id, missed_delivery["id"], expect=1)
    assert f"webhook {hook.id} is disabled" in refused.stderr
    assert f"objectvision webhooks update {hook.id} --enable" in refused.stderr

    pinged = cli.run("webhooks", "ping", hook.id, "--wait")
    assert "Test event delivered: the receiver answered HTTP 200 (1 attempt)." in pinged.stderr
    # Only the test event reached the receiver: the job's event was kept, not sent.
    [ping] = hook_receiver.received()
    assert ping.headers["x-objectvision-event"] == "webhook.ping"
    assert ping.headers["x-objectvision-delivery"] == pinged.stdout.strip()
    assert (ping.json["type"], ping.json["data"]["webhook_id"]) == ("webhook.ping", hook.id)
    assert verify(
        hook.secret,
        timestamp=ping.headers["x-objectvision-timestamp"],
        signature=ping.headers["x-objectvision-signature"],
        body=ping.body,
    )

    enabled = cli.run("webhooks", "update", hook.id, "--enable")
    assert f"`objectvision webhooks deliveries {hook.id} --state dead`" in enabled.stderr
    [listed] = cli.json("webhooks", "list")
    assert (listed["enabled"], listed["disabled_at"], listed["disabled_reason"]) == (
        True,
        None,
        None,
    )
    assert listed["consecutive_failures"] == 0
    queued = cli.run("webhooks", "redeliver", hook.id, missed_delivery["id"]).stdout.strip()
    deadline = time.monotonic() + 60
    while len(hook_receiver.received()) < 2:
        assert time.monotonic() < deadline, "the missed event was never redelivered"
        time.sleep(0.2)
    redelivered = hook_receiver.received()[1]
    assert redelivered.headers["x-objectvision-delivery"] == queued
    assert redelivered.json["id"] == missed_delivery["event_id"]

    # The first retry of a failed attempt is 15 s away at the least (DELIVERY_BACKOFF_BASE_SECONDS).
    hook_receiver.script.append(500)
    failing = cli.run("webhooks", "ping", hook.id, "--wait", "--wait-seconds", "3", expect=1)
    assert "is still pending after 3 s" in failing.stderr
    assert "1 attempt so far, the last failed: receiver answered 500" in failing.stderr
    assert [post.answered for post in hook_receiver.received()] == [200, 200, 500]


def test_an_expired_access_token_is_refreshed_and_saved(
    stack: Stack, email: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    own = _new_cli(stack, tmp_path_factory)
    own.run("login", "--email", email, "--password", PASSWORD)
    saved = json.loads(own.credentials.read_text())
    old_refresh = saved["sessions"][own.api_url]["refresh_token"]
    saved["sessions"][own.api_url]["access_token"] = "not-a-valid-token"
    own.credentials.write_text(json.dumps(saved))

    own.run("history", "--limit", "1")

    renewed = json.loads(own.credentials.read_text())["sessions"][own.api_url]
    assert renewed["access_token"] != "not-a-valid-token"
    assert renewed["refresh_token"] != old_refresh
    assert stat.S_IMODE(own.credentials.stat().st_mode) == 0o600

    own.run("logout")
    assert own.api_url not in json.loads(own.credentials.read_text())["sessions"]
    assert "not logged in" in own.run("history", expect=1).stderr


def test_failures_exit_non_zero_with_a_plain_message(
    stack: Stack, cli: CommandLine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    fresh = _new_cli(stack, tmp_path_factory)
    assert "run `objectvision login` first" in fresh.run("history", expect=1).stderr

    wrong = fresh.run(
        "login",
        "--email",
        f"nobody-{uuid.uuid4().hex}@example.com",
        "--password",
        "wrong pw!",
        expect=1,
    )
    assert wrong.stderr.startswith("error: incorrect email or password (HTTP 401")
    assert not fresh.credentials.exists()

    not_an_image = cli.run("detect", str(IMAGES / "README.md"), expect=1)
    assert "HTTP 415" in not_an_image.stderr
    assert "Traceback" not in not_an_image.stderr

    unreachable = fresh.run(
        "--api-url",
        "http://127.0.0.1:9",
        "history",
        expect=1,
        extra_env={"OBJECTVISION_API_KEY": "ov_unused"},
    )
    assert "could not reach http://127.0.0.1:9" in unreachable.stderr

    assert "no such file" in cli.run("detect", "/nonexistent.jpg", expect=1).stderr
    assert (
        "is not between 0 and 1"
        in cli.run("detect", str(BUS), "--confidence", "2", expect=2).stderr
    )


async def test_async_client_end_to_end(stack: Stack) -> None:
    """The library's AsyncClient on the same stack: what the CLI does not reach."""
    email = f"async-{uuid.uuid4().hex}@example.com"
    saved: list[TokenPair | None] = []
    async with AsyncClient(
        stack.gateway_url, headers=fresh_network(), on_tokens=saved.append
    ) as client:
        await client.signup(email, PASSWORD, "Async Test")
        await client.login(email, PASSWORD)
        assert (await client.me()).email == email

        results = await client.detect_images(
            [BUS, ("zidane.jpg", (IMAGES / "zidane.jpg").read_bytes())]
        )
        assert [r.filename for r in results] == ["bus.jpg", "zidane.jpg"]
        assert results[0].class_counts() == {"person": 4, "bus": 1}
        confident = [obj.class_name for obj in results[1].objects if obj.confidence > 0.8]
        assert confident == ["person", "person"]
        assert "tie" in results[1].class_counts()

        images = sorted((COCO8 / "val").glob("*.jpg"))
        job = await client.submit_batch(images, DetectionParams(classes=["person"]))
        async with asyncio.timeout(120):
            done = await client.wait_for_job(job.job_id, poll_seconds=0.2)
        assert done.status == "completed" and done.processed == len(images)
        stored = await client.get_detection(done.items[0].detection_id)
        assert {obj.class_name for obj in stored.objects} <= {"person"}

        page = await client.history(limit=2)
        assert page.total == 2 + len(images) and len(page.items) == 2

        hook = await client.create_webhook("http://127.0.0.1:9/hook", ["job.completed"])
        assert hook.secret and [h.id for h in await client.list_webhooks()] == [hook.id]
        await client.delete_webhook(hook.id)
        assert await client.list_webhooks() == []

        session = client.tokens

    # A dead access token is refreshed once, transparently, and handed to on_tokens.
    stale = TokenPair(access_token="not-a-token", refresh_token=session.refresh_token, expires_in=0)
    async with AsyncClient(stack.gateway_url, tokens=stale, on_tokens=saved.append) as client:
        assert (await client.me()).email == email
        assert saved[-1] is client.tokens
        assert client.tokens.refresh_token != session.refresh_token

        await client.logout()
        assert client.tokens is None and saved[-1] is None
        with pytest.raises(ObjectVisionError) as refused:
            await client.get_job(job.job_id)
        assert (refused.value.status, refused.value.code) == (401, "unauthenticated")
        assert refused.value.request_id


def test_rate_limits_beyond_the_retry_budget_are_raised_at_once(stack: Stack) -> None:
    """Login is limited per address and email for a minute: a Retry-After longer than the
    policy's max_delay is reported at once rather than slept through."""
    policy = RetryPolicy(max_delay=2.0)
    email = f"limited-{uuid.uuid4().hex}@example.com"
    statuses: list[int] = []
    with Client(stack.gateway_url, headers=fresh_network(), retry=policy) as client:
        while len(statuses) < MAX_LOGIN_ATTEMPTS and 429 not in statuses:
            try:
                client.login(email, "wrong password")
            except ObjectVisionError as exc:
                statuses.append(exc.status)
        started = time.monotonic()
        with pytest.raises(ObjectVisionError) as limited:
            client.login(email, "wrong password")
        assert time.monotonic() - started < policy.max_delay
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401}
    assert limited.value.status == 429
    assert limited.value.retry_after is not None and limited.value.retry_after > policy.max_delay


def test_an_unreachable_api_url_is_named_not_blamed_on_the_login(tmp_path: Path) -> None:
    """Without a saved session for it, a mistyped --api-url used to say "not logged in"."""
    nowhere = CommandLine("http://127.0.0.1:9", tmp_path)
    result = nowhere.run("--api-url", "http://127.0.0.1:9", "history", expect=1)
    assert "could not reach the server at http://127.0.0.1:9" in result.stderr
    assert "--api-url" in result.stderr
    assert "not logged in" not in result.stderr


def test_a_folder_given_for_an_image_is_named_as_such(tmp_path: Path) -> None:
    cli = CommandLine("http://127.0.0.1:9", tmp_path)
    result = cli.run("detect", str(COCO8), expect=1)
    assert f"{COCO8} is a folder, not an image file" in result.stderr
    assert f"objectvision batch {COCO8}" in result.stderr
    annotate_into_a_file = cli.run("detect", str(BUS), "--annotate", str(BUS), expect=1)
    assert "is a file: give the folder to write the images to" in annotate_into_a_file.stderr


def test_usage_errors_exit_2_like_argparse(tmp_path: Path) -> None:
    """Wrong usage exits 2 whether argparse or the command finds it; failures exit 1."""
    cli = CommandLine("http://127.0.0.1:9", tmp_path)
    assert "unrecognized arguments" in cli.run("history", "--no-such-option", expect=2).stderr
    # No --email and no terminal to ask on: the call is incomplete, not a failed request.
    no_email = cli.run("login", "--password", "pw", expect=2)
    assert "no email given: pass --email" in no_email.stderr
    no_password = cli.run("login", "--email", "a@example.com", expect=2)
    assert "no password given" in no_password.stderr


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_writes_a_jobs_yolo_zip_and_the_historys_csv(
    cli: CommandLine, batch_job: dict, tmp_path: Path
) -> None:
    target = tmp_path / "coco8.zip"
    result = cli.run(
        "export", "--job", batch_job["job_id"], "--format", "yolo", "--output", str(target)
    )
    assert result.stdout.strip() == str(target)
    assert f"Saved the yolo export of job {batch_job['job_id']} to {target}" in result.stderr
    with zipfile.ZipFile(target) as archive:
        index = _csv_rows(archive.read("images.csv").decode())
        assert [row["detection_id"] for row in index] == [
            item["detection_id"] for item in batch_job["items"]
        ]
        for row, item in zip(index, batch_job["items"], strict=True):
            assert row["filename"] == item["filename"]
            labels = archive.read(row["label_file"]).decode().splitlines()
            assert len(labels) == item["object_count"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["coco8.zip"]

    people = tmp_path / "people.csv"
    cli.run("export", "--format", "csv", "--class", "person", "-o", str(people))
    rows = _csv_rows(people.read_text())
    listed = cli.json("history", "--class", "person", "--limit", "100")
    assert listed["total"] <= 100
    assert {row["detection_id"] for row in rows} == {
        item["detection_id"] for item in listed["items"]
    }
    assert len(rows) == sum(len(item["detections"]) for item in listed["items"])


def test_export_failures_say_why_and_leave_no_file(cli: CommandLine, tmp_path: Path) -> None:
    target = tmp_path / "missing.json"
    missing = cli.run("export", "--job", str(uuid.uuid4()), "-o", str(target), expect=1)
    assert "HTTP 404" in missing.stderr and "Traceback" not in missing.stderr
    assert list(tmp_path.iterdir()) == []

    mixed = cli.run("export", "--job", str(uuid.uuid4()), "--class", "bus", expect=2)
    assert "--job exports the whole job" in mixed.stderr
    assert "invalid choice: 'xml'" in cli.run("export", "--format", "xml", expect=2).stderr
    assert "not an ISO 8601 time" in cli.run("export", "--since", "yesterday", expect=2).stderr


def _fresh_jpegs(count: int) -> list[tuple[str, bytes]]:
    """bus.jpg with one random pixel each: bytes no result cache has seen, so the job runs."""
    image = cv2.imread(str(BUS))
    fresh = []
    for index in range(count):
        image[0, 0] = list(uuid.uuid4().bytes[:3])
        ok, encoded = cv2.imencode(".jpg", image)
        assert ok
        fresh.append((f"fresh-{index}.jpg", encoded.tobytes()))
    return fresh


async def test_the_async_client_streams_an_export_and_names_a_running_jobs_conflict(
    stack: Stack,
) -> None:
    email = f"async-export-{uuid.uuid4().hex}@example.com"
    async with AsyncClient(stack.gateway_url, headers=fresh_network()) as client:
        await client.signup(email, PASSWORD, "Async Export")
        await client.login(email, PASSWORD)
        job = await client.submit_batch(_fresh_jpegs(8))
        with pytest.raises(ObjectVisionError) as running:
            await client.export(io.BytesIO(), format="coco", job_id=job.job_id)
        assert running.value.status == 409 and "once it has finished" in running.value.message

        async with asyncio.timeout(120):
            done = await client.wait_for_job(job.job_id, poll_seconds=0.2)
        received: list[int] = []
        sink = io.BytesIO()
        exported = await client.export(
            sink, format="coco", job_id=job.job_id, on_progress=received.append
        )
        assert exported.filename == f"objectvision-job-{job.job_id}-coco.json"
        assert exported.content_type == "application/json"
        assert exported.size == len(sink.getvalue()) == received[-1]
        coco = json.loads(sink.getvalue())
        assert [image["detection_id"] for image in coco["images"]] == [
            item.detection_id for item in done.items
        ]
        assert len(coco["annotations"]) == sum(item.object_count for item in done.items)


def test_history_delete_and_jobs_delete_remove_what_was_uploaded(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """A user of their own: the module's user keeps its history for the other tests."""
    cli = _new_cli(stack, tmp_path_factory)
    cli.run("login", "--email", _sign_up(stack), "--password", PASSWORD)
    (detected,) = cli.json("detect", str(BUS))
    detection_id = detected["detection_id"]

    deleted = cli.run("history", "delete", detection_id)
    assert f"Detection {detection_id} deleted, with its image." in deleted.stderr
    assert cli.json("history")["total"] == 0
    again = cli.run("history", "delete", detection_id, expect=1)
    assert "HTTP 404" in again.stderr and "Traceback" not in again.stderr

    folder = tmp_path / "two"
    folder.mkdir()
    for path in sorted(COCO8.rglob("*.jpg"))[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    job = cli.json("batch", str(folder), "--wait")
    assert job["status"] == "completed" and cli.json("history")["total"] == 2

    removed = cli.run("jobs", "delete", job["job_id"])
    assert f"Job {job['job_id']} deleted" in removed.stderr
    assert cli.json("history")["total"] == 0
    assert cli.json("jobs", "list")["total"] == 0
    assert "HTTP 404" in cli.run("jobs", "show", job["job_id"], expect=1).stderr


def test_history_delete_with_filters_removes_what_they_keep_once_confirmed(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A user of their own with two images from one camera and one from another: the filtered
    form deletes the first two only, and without a terminal only with --yes."""
    cli = _new_cli(stack, tmp_path_factory)
    cli.run("login", "--email", _sign_up(stack), "--password", PASSWORD)
    cli.run("detect", str(BUS), str(BUS), "--meta", "camera=test-rig")
    (other,) = cli.json("detect", str(BUS), "--meta", "camera=north-gate")

    unconfirmed = cli.run("history", "delete", "--meta", "camera=test-rig", expect=2)
    assert "confirm with --yes" in unconfirmed.stderr
    assert cli.json("history")["total"] == 3

    deleted = cli.run("history", "delete", "--meta", "camera=test-rig", "--yes", "--json")
    assert json.loads(deleted.stdout) == {"deleted": 2, "kept_in_unfinished_jobs": 0, "more": False}
    assert "Deleted 2 detections with their images." in deleted.stderr
    left = cli.json("history")["items"]
    assert [(item["detection_id"], item["metadata"]) for item in left] == [
        (other["detection_id"], {"camera": "north-gate"})
    ]


async def test_the_async_client_deletes_and_names_a_running_jobs_conflict(stack: Stack) -> None:
    email = f"async-delete-{uuid.uuid4().hex}@example.com"
    async with AsyncClient(stack.gateway_url, headers=fresh_network()) as client:
        await client.signup(email, PASSWORD, "Async Delete")
        await client.login(email, PASSWORD)
        result = await client.detect_image(str(BUS))
        assert await client.delete_detection(result.detection_id) is None
        with pytest.raises(ObjectVisionError) as gone:
            await client.get_detection(result.detection_id)
        assert gone.value.status == 404

        job = await client.submit_batch(_fresh_jpegs(8))
        with pytest.raises(ObjectVisionError) as running:
            await client.delete_job(job.job_id)
        assert running.value.status == 409 and "cancel it first" in running.value.message
        async with asyncio.timeout(120):
            await client.wait_for_job(job.job_id, poll_seconds=0.2)
        await client.delete_job(job.job_id)
        assert (await client.history()).total == 0
        with pytest.raises(ObjectVisionError) as again:
            await client.delete_job(job.job_id)
        assert again.value.status == 404


def test_account_delete_needs_confirmation_and_the_password_then_ends_the_session(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A user of their own: deleting it would end the module's session."""
    cli = _new_cli(stack, tmp_path_factory)
    email = _sign_up(stack)
    cli.run("login", "--email", email, "--password", PASSWORD)

    # No terminal to ask on, and no --yes: nothing is sent.
    unconfirmed = cli.run("account", "delete", "--password", PASSWORD, expect=2)
    assert "confirm with --yes" in unconfirmed.stderr
    wrong = cli.run("account", "delete", "--yes", "--password", "not my password", expect=1)
    assert "current_password is incorrect (HTTP 403 permission_denied" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert cli.json("whoami")["email"] == email

    deleted = cli.run("account", "delete", "--yes", "--password", PASSWORD)

    assert f"Account {email} deleted" in deleted.stderr
    assert cli.api_url not in json.loads(cli.credentials.read_text()).get("sessions", {})
    assert "not logged in" in cli.run("whoami", expect=1).stderr
    refused = cli.run("login", "--email", email, "--password", PASSWORD, expect=1)
    assert "HTTP 401" in refused.stderr


async def test_the_clients_delete_an_account_only_with_its_password_and_forget_its_tokens(
    stack: Stack,
) -> None:
    email = f"leaving-{uuid.uuid4().hex}@example.com"
    async with AsyncClient(stack.gateway_url, headers=fresh_network()) as client:
        await client.signup(email, PASSWORD, "Leaving")
        await client.login(email, PASSWORD)
        with pytest.raises(ObjectVisionError) as refused:
            await client.delete_account("not my password")
        assert (refused.value.status, refused.value.code) == (403, "permission_denied")
        assert (await client.me()).email == email

        assert await client.delete_account(PASSWORD) is None

        with pytest.raises(ObjectVisionError) as signed_out:
            await client.me()
        assert signed_out.value.status == 401
    with Client(stack.gateway_url, headers=fresh_network()) as again:
        with pytest.raises(ObjectVisionError) as gone:
            again.login(email, PASSWORD)
        assert gone.value.status == 401
        # The address is free: signing up makes a new, empty account.
        again.signup(email, PASSWORD, "Back Again")
        again.login(email, PASSWORD)
        assert again.history().total == 0
        again.delete_account(PASSWORD)
