"""Notifications end to end, with every part real and every request through the gateway:
auth-service and detection-service write events to their outboxes, the relays publish them
to Redis, notification-service turns them into emails (to the stack's SMTP sink, which keeps
each message as an .eml file), signed webhooks (to an HTTP server this test runs on
127.0.0.1) and live WebSocket messages.

Issue "Notifications", done when:
1. a sign-up sends exactly one welcome email (HTML and text parts) to the new user;
2. a finished batch job sends exactly one report email with the per-class counts, exactly
   one signed webhook, and WebSocket messages that end with `job.completed`;
3. a sign-up while Redis is down still succeeds, and its welcome email arrives exactly once
   after Redis is back (the event waits in auth-service's outbox meanwhile);
4. a webhook receiver that answers 500 twice and then 200 gets three attempts, one success;
5. a user who turned notifications off gets no report email, and the job still completes.

And for addresses that already have an account: a second sign-up gets the first one's answer
and the owner gets one "someone tried to sign up" email, a third within the hour none; an
email change to a taken address is answered 200 and its owner gets one notice.

1, 2, 5 and these run on the suite's shared stack (tests/conftest.py). 3 and 4 run on a stack of
their own (`isolated_stack`), in the slow tier (`make test-slow`) with the other injected
faults: 3 stops and restarts its Redis, which must not disturb the other suites, and 4 needs
retries in fractions of a second instead of the default backoff
(DELIVERY_BACKOFF_BASE_SECONDS=30). It shares only Triton with the rest of the suite.

Every test signs up its own users (uuid emails, own X-Forwarded-For, as test_auth_api.py
does) and finds its emails by recipient, so other suites' mail in the sink does not matter.
"""

import asyncio
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from objectvision.v1 import common_pb2, notification_pb2, notification_pb2_grpc
from objectvision_common.identity import principal_metadata
from objectvision_devstack.api_users import PASSWORD, Account, logged_in, sign_up, signed_in
from objectvision_devstack.mail import Mailbox, text_and_html
from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import served_model_path
from objectvision_devstack.stack import Stack, StackConfig
from objectvision_devstack.triton import LocalTriton
from objectvision_devstack.waiting import eventually, stays

from .conftest import CHEAPEST_PASSWORD_HASHING

ME = "/api/v1/users/me"
SETTINGS = "/api/v1/users/me/settings"
WEBHOOKS = "/api/v1/webhooks"
BATCH = "/api/v1/detect/batch"
HISTORY = "/api/v1/detect/history"
WELCOME_SUBJECT = "Welcome to ObjectVision"
SIGNUP_ATTEMPTED_SUBJECT = "Someone tried to sign up to ObjectVision with your email address"
# Sign-up also mails a link that verifies the address (ADR 0029; test_email_verification_e2e.py).
VERIFICATION_SUBJECT = "Confirm your ObjectVision email address"


def _subjects_but_verification(mailbox: Mailbox, address: str) -> list[str]:
    """The subjects of the mail to `address`, the verification link left out: it comes with
    every sign-up, in its own time."""
    return [str(m["Subject"]) for m in mailbox.to(address) if m["Subject"] != VERIFICATION_SUBJECT]


EMAIL_CHANGE_ATTEMPTED_SUBJECT = (
    "Someone tried to move your address to another ObjectVision account"
)
REPORT_SUBJECT_PREFIX = "Your detection job finished"

# A bound, not the expected time (an event leaves at its commit): the machine may be busy.
ARRIVES_WITHIN_SECONDS = 45.0
# After Redis comes back the relay and the consumer are in their (capped) backoff.
ARRIVES_AFTER_OUTAGE_WITHIN_SECONDS = 30.0
JOB_WITHIN_SECONDS = 60.0
# How long to keep watching for a copy that should not come.
QUIET_SECONDS = 1.5
# Receivers should refuse signatures older than a few minutes (ADR 0006).
SIGNATURE_TOLERANCE_SECONDS = 300


def _shared_images() -> Path:
    """OBJECTVISION_SHARED_DIR, else the `shared/` folder beside the repository."""
    shared = os.environ.get("OBJECTVISION_SHARED_DIR")
    root = Path(shared) if shared else Path(__file__).resolve().parents[1].parent / "shared"
    return root / "images"


IMAGES = _shared_images()
pytestmark = [
    pytest.mark.skipif(
        not (IMAGES / "coco8").is_dir(),
        reason=f"sample images not found under {IMAGES} (set OBJECTVISION_SHARED_DIR)",
    ),
    # The slow tier (make test-slow): this whole flow through every service repeats, end to
    # end, what the services' own tests check one by one, and make test stays under 15 minutes.
    pytest.mark.slow,
]


def _coco8(count: int) -> list[Path]:
    paths = sorted(IMAGES.glob("coco8/images/*/*.jpg"))[:count]
    assert len(paths) == count, f"coco8 images missing under {IMAGES}"
    return paths


# Users


async def _account(client: httpx.AsyncClient, name: str = "Notified User") -> Account:
    """Sign-up names no account (it answers alike for a taken address): the account is read
    back from /users/me once logged in."""
    return await signed_in(client, prefix="notify", name=name, read_back=True)


# Email: what the stack's SMTP sink stored (the `mailbox` fixture, tests/conftest.py)


def _parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML alternatives of a message."""
    assert message.get_content_type() == "multipart/alternative"
    text, html = text_and_html(message)
    # The SMTP wire format ends lines with CRLF.
    return "\n".join(text.splitlines()), "\n".join(html.splitlines())


def _reported_counts(text: str) -> Counter[str]:
    """The "Objects found (N):" list of a report's text part, checked against its N."""
    found = re.search(r"^Objects found \((\d+)\):\n((?:  .+: \d+\n)+)", text, re.MULTILINE)
    assert found, f"no per-class counts in the report:\n{text}"
    counts = Counter(
        {name: int(count) for name, count in re.findall(r"^  (.+): (\d+)$", found[2], re.M)}
    )
    assert counts.total() == int(found[1]), text
    return counts


# Webhooks: to the `hook_receiver` fixture's real HTTP server (tests/conftest.py)


async def _register_webhook(client: httpx.AsyncClient, account: Account, url: str) -> str:
    """A webhook for job.completed; returns its signing secret (shown only now)."""
    created = await client.post(
        WEBHOOKS, json={"url": url, "events": ["job.completed"]}, headers=account.headers
    )
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    return secret


def _assert_signed(request: Any, secret: str) -> None:
    """X-ObjectVision-Signature is v1=hex(HMAC-SHA256(secret, "<timestamp>.<raw body>")),
    over a timestamp a receiver would accept."""
    timestamp = request.headers["x-objectvision-timestamp"]
    assert abs(time.time() - int(timestamp)) < SIGNATURE_TOLERANCE_SECONDS
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert hmac.compare_digest(
        request.headers["x-objectvision-signature"], f"v1={expected.hexdigest()}"
    ), "the webhook's signature does not verify with the secret from its creation"


# Jobs


async def _submit(client: httpx.AsyncClient, account: Account, paths: list[Path]) -> str:
    files = [("files", (path.name, path.read_bytes(), "image/jpeg")) for path in paths]
    submitted = await client.post(BATCH, files=files, headers=account.headers)
    assert submitted.status_code == 202, submitted.text
    return submitted.json()["job_id"]


async def _finished_job(client: httpx.AsyncClient, account: Account, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_WITHIN_SECONDS
    while True:
        response = await client.get(f"/api/v1/detect/jobs/{job_id}", headers=account.headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] in ("completed", "failed"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        await asyncio.sleep(0.25)


async def _class_counts(client: httpx.AsyncClient, account: Account, job_id: str) -> Counter:
    """What the job found, per class, from the caller's history."""
    response = await client.get(HISTORY, params={"limit": 100}, headers=account.headers)
    assert response.status_code == 200, response.text
    return Counter(
        found["class"]
        for stored in response.json()["items"]
        if stored["job_id"] == job_id
        for found in stored["detections"]
    )


async def _job_messages(
    stack: Stack, account: Account, job_id: str
) -> tuple[list[dict[str, Any]], int | None]:
    """Everything the job's WebSocket sends until the server closes it, and the close code."""
    url = f"{stack.gateway_url.replace('http://', 'ws://')}/api/v1/ws/jobs/{job_id}"
    messages = []
    async with asyncio.timeout(JOB_WITHIN_SECONDS):
        async with connect(url, additional_headers=account.headers) as socket:
            try:
                while True:
                    messages.append(json.loads(await socket.recv()))
            except ConnectionClosed:
                return messages, socket.close_code


# The shared stack


async def test_signing_up_sends_exactly_one_welcome_email(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    address = f"welcome-{uuid.uuid4().hex}@example.com"

    signed_up = await sign_up(gateway_client, address, "Ada Lovelace")
    assert signed_up.status_code == 202, signed_up.text

    message = await mailbox.exactly_one(
        address, WELCOME_SUBJECT, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS, prefix=True
    )
    assert message["Subject"] == WELCOME_SUBJECT
    assert message["To"].addresses[0].display_name == "Ada Lovelace"
    assert message["Message-ID"] and message["X-ObjectVision-Delivery"]
    text, html = _parts(message)
    assert "Hello Ada Lovelace" in text and "welcome to ObjectVision" in text
    assert "<html" in html and "Ada Lovelace" in html
    await mailbox.exactly_one(
        address, VERIFICATION_SUBJECT, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS
    )
    assert sorted(str(m["Subject"]) for m in mailbox.to(address)) == sorted(
        [WELCOME_SUBJECT, VERIFICATION_SUBJECT]
    ), "a sign-up sends the welcome email and the verification link, nothing else"


async def test_a_finished_job_sends_one_report_one_signed_webhook_and_live_progress(
    gateway_client: httpx.AsyncClient, stack: Stack, mailbox: Mailbox, hook_receiver: Any
) -> None:
    account = await _account(gateway_client, "Reporter")
    secret = await _register_webhook(gateway_client, account, hook_receiver.url)
    images = _coco8(4)

    job_id = await _submit(gateway_client, account, images)
    messages, close_code = await _job_messages(stack, account, job_id)

    # Live progress: progress messages, then the final one, then a normal close.
    assert messages, "the WebSocket closed without a message"
    *progress, final = messages
    assert final["type"] == "job.completed", messages
    assert close_code == 1000
    assert all(message["type"] == "job.progress" for message in progress), messages
    assert all(message["job_id"] == job_id for message in messages)
    processed = [message["processed"] + message["failed"] for message in progress]
    assert processed == sorted(processed), "progress never goes backwards"
    assert (final["status"], final["total"], final["processed"]) == ("completed", 4, 4)
    # Once it has finished an image, progress says the job's pace and when it should end.
    for message in progress:
        if message["processed"] + message["failed"] == 0:
            assert message["estimated_completion_at"] is None, message
            continue
        assert message["items_per_second"] > 0, message
        ends = datetime.fromisoformat(message["estimated_completion_at"])
        assert ends >= datetime.fromisoformat(message["occurred_at"]) - timedelta(seconds=1)
    assert any(message["estimated_completion_at"] for message in progress), messages

    job = await _finished_job(gateway_client, account, job_id)
    assert (job["status"], job["processed"], job["failed"]) == ("completed", 4, 0)
    assert (job["items_per_second"], job["estimated_completion_at"]) == (None, None)
    counts = await _class_counts(gateway_client, account, job_id)
    assert counts, "the coco8 images have objects in them"

    # The report email: the user's, with the per-class counts.
    report = await mailbox.exactly_one(
        account.email,
        REPORT_SUBJECT_PREFIX,
        within=ARRIVES_WITHIN_SECONDS,
        quiet=QUIET_SECONDS,
        prefix=True,
    )
    assert report["Subject"] == f"{REPORT_SUBJECT_PREFIX}: 4 of 4 images"
    text, html = _parts(report)
    assert job_id in text and job_id in html
    # Its link opens this stack's console on the job (the page, not a JSON 404).
    console_job = f"{stack.gateway_url}/#/jobs/{job_id}"
    assert f"Results: {console_job}" in text and f'href="{console_job}"' in html
    assert "Images: 4 submitted, 4 processed, 0 failed." in text
    assert _reported_counts(text) == counts
    assert f"Objects found ({counts.total()})" in html
    for class_name, count in counts.items():
        assert re.search(rf"<td[^>]*>{re.escape(class_name)}</td>\s*<td[^>]*>{count}</td>", html)

    # The webhook: exactly one, signed with the secret from its creation.
    await eventually(hook_receiver.received, within=ARRIVES_WITHIN_SECONDS, what="the webhook")
    await stays(
        lambda: len(hook_receiver.received()) == 1,
        for_seconds=QUIET_SECONDS,
        what="a second webhook",
    )
    (webhook,) = hook_receiver.received()
    _assert_signed(webhook, secret)
    assert webhook.headers["x-objectvision-event"] == "job.completed"
    assert webhook.headers["content-type"] == "application/json"
    body = webhook.json
    assert set(body) == {"id", "type", "occurred_at", "data", "console_url"}
    assert body["console_url"] == console_job
    assert uuid.UUID(body["id"]) and body["type"] == "job.completed"
    data = body["data"]
    assert (data["job_id"], data["status"], data["total"], data["processed"]) == (
        job_id,
        "completed",
        4,
        4,
    )
    assert data["class_counts"] == dict(counts)

    # All three channels carry the same event, and the job itself answers the same counts.
    assert (final["event_id"], final["class_counts"]) == (body["id"], dict(counts))
    assert job["class_counts"] == dict(counts)
    assert data["metadata"] == {}


async def test_notifications_off_means_no_report_email_but_the_job_completes(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox, hook_receiver: Any
) -> None:
    account = await _account(gateway_client, "Quiet User")
    switched = await gateway_client.patch(
        SETTINGS, json={"notifications_enabled": False}, headers=account.headers
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["notifications_enabled"] is False
    # Webhooks do not depend on the email switch; this one shows when the job event has
    # been handled, which is when a report email would have been queued with it.
    await _register_webhook(gateway_client, account, hook_receiver.url)

    job_id = await _submit(gateway_client, account, _coco8(2))

    job = await _finished_job(gateway_client, account, job_id)
    assert (job["status"], job["processed"], job["failed"]) == ("completed", 2, 0)
    (webhook,) = await eventually(
        hook_receiver.received, within=ARRIVES_WITHIN_SECONDS, what="the job.completed webhook"
    )
    assert webhook.json["data"]["job_id"] == job_id
    await stays(
        lambda: mailbox.about(account.email, REPORT_SUBJECT_PREFIX, prefix=True) == [],
        for_seconds=QUIET_SECONDS,
        what="a report email despite notifications_enabled=false",
    )
    assert _subjects_but_verification(mailbox, account.email) == [WELCOME_SUBJECT]


def _login_link(text: str, html: str) -> str:
    """The login link of an address notice: the console's page, in both parts."""
    found = re.search(r"log in (?:to it )?with your password at (\S+)", text)
    assert found, text
    url = found[1]
    assert url.startswith("http") and url.endswith("/"), url
    assert f'href="{url}"' in html
    return url


async def test_signing_up_with_a_taken_address_answers_alike_and_tells_the_owner_once(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    """The second sign-up gets the first one's answer, and the owner (not the person signing
    up) gets one notice; a third within the hour sends none."""
    address = f"owner-{uuid.uuid4().hex}@example.com"
    first = await sign_up(gateway_client, address, "Ada Owner")
    assert first.status_code == 202, first.text
    await mailbox.exactly_one(
        address, WELCOME_SUBJECT, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS, prefix=True
    )

    second = await sign_up(gateway_client, address, "Eve Intruder")

    assert second.status_code == 202, second.text
    assert second.json() == first.json()
    notice = await mailbox.exactly_one(
        address,
        SIGNUP_ATTEMPTED_SUBJECT,
        within=ARRIVES_WITHIN_SECONDS,
        quiet=QUIET_SECONDS,
        prefix=True,
    )
    # The owner's name, from the account: nothing the second sign-up typed reaches the mail.
    assert notice["To"].addresses[0].display_name == "Ada Owner"
    text, html = _parts(notice)
    assert "Hello Ada Owner" in text and "Eve" not in text + html
    assert f"sign up to ObjectVision with your email address, {address}" in " ".join(text.split())
    assert "If it was not you: you can ignore this email." in text
    _login_link(text, html)

    third = await sign_up(gateway_client, address, "Eve Intruder")
    assert third.status_code == 202, third.text
    assert third.json() == first.json()
    # A later sign-up's welcome shows the relay and the consumer have moved past the third
    # attempt, which would have been staged before it.
    marker = f"marker-{uuid.uuid4().hex}@example.com"
    assert (await sign_up(gateway_client, marker, "Marker")).status_code == 202
    await mailbox.exactly_one(
        marker, WELCOME_SUBJECT, within=ARRIVES_WITHIN_SECONDS, quiet=QUIET_SECONDS, prefix=True
    )
    await stays(
        lambda: len(mailbox.about(address, SIGNUP_ATTEMPTED_SUBJECT, prefix=True)) == 1,
        for_seconds=QUIET_SECONDS,
        what="a second sign-up notice within the hour",
    )
    assert Counter(_subjects_but_verification(mailbox, address)) == Counter(
        {WELCOME_SUBJECT: 1, SIGNUP_ATTEMPTED_SUBJECT: 1}
    )


async def test_an_email_change_to_a_taken_address_tells_its_owner_once(
    gateway_client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    """Two accounts ask for the owner's address: both are answered 200 with their own email
    unchanged, and the owner gets one notice (one an hour per account)."""
    owner = await _account(gateway_client, "Bob Owner")
    askers = [await _account(gateway_client, "Asker") for _ in range(2)]

    for asker in askers:
        answer = await gateway_client.patch(
            ME, json={"email": owner.email, "current_password": PASSWORD}, headers=asker.headers
        )
        assert answer.status_code == 200, answer.text
        assert (answer.json()["id"], answer.json()["email"]) == (asker.id, asker.email)

    notice = await mailbox.exactly_one(
        owner.email,
        EMAIL_CHANGE_ATTEMPTED_SUBJECT,
        within=ARRIVES_WITHIN_SECONDS,
        quiet=QUIET_SECONDS,
        prefix=True,
    )
    assert notice["To"].addresses[0].display_name == "Bob Owner"
    text, html = _parts(notice)
    assert "Hello Bob Owner" in text
    assert "the change was not made" in " ".join(text.split())
    _login_link(text, html)
    for asker in askers:
        assert mailbox.about(asker.email, EMAIL_CHANGE_ATTEMPTED_SUBJECT, prefix=True) == []
    me = await gateway_client.get(ME, headers=owner.headers)
    assert me.json()["email"] == owner.email


# A stack of this module's own: its Redis can be stopped, its retries are fast


@pytest.fixture(scope="module")
def isolated_stack(
    triton: LocalTriton, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Its own embedded PostgreSQL, Redis and SMTP sink; the suite's Triton."""
    running = Stack(
        StackConfig(
            data_dir=tmp_path_factory.mktemp("notifications-stack"),
            gateway_port=free_port(),
            triton_url=triton.grpc_url,
            served_model=served_model_path(),
            extra_env={
                **CHEAPEST_PASSWORD_HASHING,
                "LOG_LEVEL": "INFO",
                "WEBHOOK_ALLOW_PRIVATE": "true",
                "TRUST_PROXY_HEADERS": "true",
                "DELIVERY_BACKOFF_BASE_SECONDS": "0.2",
                "DELIVERY_POLL_SECONDS": "0.2",
            },
        )
    )
    with running.running():
        yield running


@pytest.fixture
async def isolated_client(isolated_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=isolated_stack.gateway_url, timeout=30.0) as client:
        yield client


@contextmanager
def _redis_down(stack: Stack) -> Iterator[None]:
    """Redis stopped for the block, then started again on the same port with its data."""
    assert stack.redis is not None, "the isolated stack runs its own Redis"
    stack.redis.stop()
    try:
        yield
    finally:
        stack.redis.start()


# What OutboxRelay logs each time it fails to publish (objectvision_common.outbox).
RELAY_FAILED = "outbox relay could not publish"


def _log_mentions(stack: Stack, service: str, text: str) -> int:
    """How many lines of a service's log mention `text`."""
    log = stack.processes[service].log_path
    return sum(text in line for line in log.read_text(errors="replace").splitlines())


def _webhook_deliveries(stack: Stack, target: str) -> list[notification_pb2.Delivery]:
    """The notification service's own record of deliveries to `target`, as an operator
    sees it (ListDeliveries is admin-only and not on the public API)."""
    operator = common_pb2.Principal(
        user_id=str(uuid.uuid4()), is_admin=True, auth_method="service", credential_id="e2e"
    )
    metadata = principal_metadata(operator, secret=stack.env["SERVICE_TOKEN_SECRET"])
    with grpc.insecure_channel(stack.service_address("notification")) as channel:
        listed = notification_pb2_grpc.NotificationServiceStub(channel).ListDeliveries(
            notification_pb2.ListDeliveriesRequest(limit=500), metadata=metadata, timeout=5
        )
    return [delivery for delivery in listed.deliveries if delivery.target == target]


@pytest.mark.slow  # a stack of its own with faults injected: make test-slow
async def test_a_sign_up_while_redis_is_down_still_gets_its_welcome_email_once(
    isolated_stack: Stack, isolated_client: httpx.AsyncClient
) -> None:
    mailbox = Mailbox(isolated_stack.mail_dir)
    address = f"outage-{uuid.uuid4().hex}@example.com"

    relay_failures = _log_mentions(isolated_stack, "auth", RELAY_FAILED)
    with _redis_down(isolated_stack):
        # The rate limiter fails open; the user and the user.registered event commit
        # together in PostgreSQL, and the event waits in the outbox.
        signed_up = await sign_up(isolated_client, address, "Grace Hopper")
        assert signed_up.status_code == 202, signed_up.text
        # Redis stays down until auth-service's relay has tried to publish the event.
        await eventually(
            lambda: _log_mentions(isolated_stack, "auth", RELAY_FAILED) > relay_failures,
            within=ARRIVES_WITHIN_SECONDS,
            what="the outbox relay failing to publish while Redis is down",
        )
        assert mailbox.to(address) == []

    message = await mailbox.exactly_one(
        address,
        WELCOME_SUBJECT,
        within=ARRIVES_AFTER_OUTAGE_WITHIN_SECONDS,
        quiet=QUIET_SECONDS,
        prefix=True,
    )
    text, html = _parts(message)
    assert "Hello Grace Hopper" in text and "Grace Hopper" in html
    # The account itself is whole: it can log in now that Redis is back.
    await logged_in(isolated_client, address, read_back=True)


@pytest.mark.slow  # a stack of its own with faults injected: make test-slow
async def test_a_webhook_that_fails_twice_gets_three_attempts_and_one_success(
    isolated_stack: Stack, isolated_client: httpx.AsyncClient, hook_receiver: Any
) -> None:
    account = await _account(isolated_client, "Retried")
    secret = await _register_webhook(isolated_client, account, hook_receiver.url)
    hook_receiver.script = [500, 500]

    job_id = await _submit(isolated_client, account, _coco8(1))

    await eventually(
        lambda: len(hook_receiver.received()) >= 3,
        within=ARRIVES_WITHIN_SECONDS,
        what="three webhook attempts",
    )
    # With DELIVERY_BACKOFF_BASE_SECONDS=0.2 a fourth attempt would come well within this.
    await stays(
        lambda: len(hook_receiver.received()) == 3,
        for_seconds=QUIET_SECONDS,
        what="an attempt after the delivery succeeded",
    )
    attempts = hook_receiver.received()
    assert [attempt.answered for attempt in attempts] == [500, 500, 200]
    # One delivery, retried: the same id and the same bytes each time, each freshly signed.
    assert len({attempt.headers["x-objectvision-delivery"] for attempt in attempts}) == 1
    assert len({attempt.body for attempt in attempts}) == 1
    for attempt in attempts:
        _assert_signed(attempt, secret)
    assert attempts[0].json["data"]["job_id"] == job_id

    (delivery,) = _webhook_deliveries(isolated_stack, hook_receiver.url)
    assert (delivery.state, delivery.attempts) == ("delivered", 3)
    assert delivery.id == attempts[0].headers["x-objectvision-delivery"]
