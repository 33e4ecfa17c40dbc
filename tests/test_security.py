"""Attacks on the running system, end to end: what SECURITY.md claims, proven here.

Uses the session stack (tests/conftest.py), which trusts X-Forwarded-For (each test sends
its own address, so the per-IP limits are per test) and allows private webhook targets for
the other suites. The webhook SSRF tests therefore run through a second, small gateway +
notification-service pair with WEBHOOK_ALLOW_PRIVATE=false, as in production, that has its
own database and event stream so it never touches the shared stack's deliveries.

Not repeated here (already proven elsewhere, referenced from SECURITY.md): forged JWTs
(`alg: none`, HS256 with the public key, expired, wrong audience/issuer/type, tampered
payload) in tests/test_auth_api.py; oversized, truncated, non-image and PNG pixel-bomb
uploads in tests/test_detect_api.py; the service-level SSRF address table in
notification-service/tests/test_webhooks.py.
"""

import asyncio
import ipaddress
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from notification_service.webhooks.targets import ForbiddenTarget, checked_target
from objectvision.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    detection_pb2,
    detection_pb2_grpc,
    notification_pb2,
    notification_pb2_grpc,
)
from objectvision_common.identity import principal_metadata
from objectvision_common.public_urls import is_forbidden_address, pinned_http_client
from objectvision_devstack.answers import api_error_with_request_id
from objectvision_devstack.api_users import Account, fresh_network, network_address, signed_in
from objectvision_devstack.health import grpc_serving, http_ok
from objectvision_devstack.processes import ManagedProcess, free_port
from objectvision_devstack.stack import Stack

PASSWORD = "correct horse battery"
SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
API_KEYS = "/api/v1/users/me/api-keys"
WEBHOOKS = "/api/v1/webhooks"
IMAGE = "/api/v1/detect/image"
BATCH = "/api/v1/detect/batch"
HISTORY = "/api/v1/detect/history"
MAX_ATTEMPTS_BEFORE_LIMIT = 200
STORAGE_KEY = re.compile(r"[0-9a-f]{2}/[0-9a-f]{32}")
SHARED = Path(
    os.environ.get("OBJECTVISION_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared"
)
BUS_JPG = SHARED / "images" / "bus.jpg"
needs_images = pytest.mark.skipif(not BUS_JPG.exists(), reason=f"{BUS_JPG} not found")


def _email(tag: str = "sec") -> str:
    return f"{tag}-{uuid.uuid4().hex}@example.com"


async def _user(
    client: httpx.AsyncClient, *, password: str = PASSWORD, name: str = "Sec"
) -> Account:
    # Sign-up names no account (it answers alike for a taken address): read back who we are.
    return await signed_in(client, prefix="sec", name=name, password=password, read_back=True)


async def _api_key(client: httpx.AsyncClient, user: Account, name: str = "sec") -> dict[str, Any]:
    created = await client.post(API_KEYS, json={"name": name}, headers=user.headers)
    assert created.status_code == 201, created.text
    return created.json()


# ---------------------------------------------------------------- brute force


async def test_login_brute_force_is_stopped_however_the_email_is_spelled(
    gateway_client: httpx.AsyncClient,
) -> None:
    """The per-IP+email limit (tests/test_auth_api.py) keys on the normalised email: changing
    its case or padding it, or switching to the form encoding, does not reset the count."""
    victim = await _user(gateway_client)
    address = network_address()
    spellings = [
        victim.email,
        victim.email.upper(),
        f"  {victim.email}  ",
        victim.email.capitalize(),
    ]
    response: httpx.Response | None = None
    for attempt in range(MAX_ATTEMPTS_BEFORE_LIMIT):
        spelling = spellings[attempt % len(spellings)]
        if attempt % 2:
            response = await gateway_client.post(
                LOGIN,
                data={"username": spelling, "password": f"guess-{attempt}"},
                headers={"X-Forwarded-For": address},
            )
        else:
            response = await gateway_client.post(
                LOGIN,
                json={"email": spelling, "password": f"guess-{attempt}"},
                headers={"X-Forwarded-For": address},
            )
        if response.status_code == 429:
            break
        assert response.status_code in (401, 422), response.text
    assert response is not None
    api_error_with_request_id(response, 429, "rate_limited")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 3600
    # The right password from the same address waits too: a guess that hits is not rewarded.
    right = await gateway_client.post(
        LOGIN,
        json={"email": victim.email, "password": PASSWORD},
        headers={"X-Forwarded-For": address},
    )
    api_error_with_request_id(right, 429, "rate_limited")


# The stack runs the default RATE_LIMIT_LOGIN_ACCOUNT: 20 failed logins per 15 minutes.
ACCOUNT_FAILURES_ALLOWED = 20


async def test_guessing_one_password_from_many_addresses_is_stopped_per_account(
    gateway_client: httpx.AsyncClient,
) -> None:
    victim = await _user(gateway_client)
    for attempt in range(ACCOUNT_FAILURES_ALLOWED):
        guess = await gateway_client.post(
            LOGIN,
            json={"email": victim.email, "password": f"guess-{attempt}"},
            headers=fresh_network(),
        )
        api_error_with_request_id(guess, 401, "unauthenticated")
    stopped = await gateway_client.post(
        LOGIN,
        json={"email": victim.email, "password": PASSWORD},
        headers=fresh_network(),
    )
    api_error_with_request_id(stopped, 429, "rate_limited")
    assert 1 <= int(stopped.headers["retry-after"]) <= 900


async def test_successful_logins_never_count_towards_the_account_limit(
    gateway_client: httpx.AsyncClient,
) -> None:
    owner = await _user(gateway_client)
    for _ in range(ACCOUNT_FAILURES_ALLOWED + 2):
        login = await gateway_client.post(
            LOGIN,
            json={"email": owner.email, "password": PASSWORD},
            headers=fresh_network(),
        )
        assert login.status_code == 200, login.text


# ---------------------------------------------------------------- object-level authorization


def _jpeg_bomb(width: int = 65500, height: int = 65500) -> bytes:
    """A complete, tiny baseline JPEG whose SOF0 header promises width x height pixels."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3)
    sof += b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    sos = b"\xff\xda" + struct.pack(">HB", 12, 3) + b"\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\x00" * 64 + b"\xff\xd9"


@dataclass
class VictimObjects:
    owner: Account
    api_key: dict[str, Any]
    detection_id: str
    job_id: str
    webhook_id: str
    # A finished video job (ADR 0016): its frames and annotated video are objects too.
    video_job_id: str = ""


async def _finished_video_job(client: httpx.AsyncClient, owner: Account) -> str:
    """A two-frame video job of bus.jpg, waited for (its annotated video exists then)."""
    from objectvision_devstack.videos import make_video

    with tempfile.TemporaryDirectory() as folder:
        clip = await asyncio.to_thread(
            make_video, Path(folder) / "bus.mp4", [(BUS_JPG, 10)], fps=5, width=320, height=240
        )
        data = await asyncio.to_thread(clip.read_bytes)
    submitted = await client.post(
        "/api/v1/detect/video",
        files={"file": ("bus.mp4", data, "video/mp4")},
        data={"every": "5"},
        headers=owner.headers,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    for _ in range(600):
        job = (await client.get(f"/api/v1/detect/jobs/{job_id}", headers=owner.headers)).json()
        if job["status"] in ("completed", "failed"):
            assert job["status"] == "completed", job
            return job_id
        await asyncio.sleep(0.2)
    raise AssertionError(f"video job {job_id} did not finish")


@pytest.fixture(scope="module")
async def victim(stack: Stack) -> AsyncIterator[VictimObjects]:
    """One of everything a user owns."""
    if not BUS_JPG.exists():
        pytest.skip(f"{BUS_JPG} not found")
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        owner = await _user(client)
        key = await _api_key(client, owner, "victim-key")
        image = BUS_JPG.read_bytes()
        detected = await client.post(
            IMAGE, files={"file": ("bus.jpg", image, "image/jpeg")}, headers=owner.headers
        )
        assert detected.status_code == 200, detected.text
        job = await client.post(
            BATCH, files=[("files", ("bus.jpg", image, "image/jpeg"))], headers=owner.headers
        )
        assert job.status_code == 202, job.text
        hook = await client.post(
            WEBHOOKS,
            json={"url": f"http://127.0.0.1:{free_port()}/victim", "events": ["job.failed"]},
            headers=owner.headers,
        )
        assert hook.status_code == 201, hook.text
        yield VictimObjects(
            owner=owner,
            api_key=key,
            detection_id=detected.json()["detection_id"],
            job_id=job.json()["job_id"],
            webhook_id=hook.json()["id"],
            video_job_id=await _finished_video_job(client, owner),
        )


def _account_requests(v: VictimObjects) -> list[tuple[str, str, dict[str, Any]]]:
    """The routes that name an account or one of its keys by id: for a signed-in session
    only, so an API key is refused before anything is looked up (ADR 0026)."""
    return [
        ("GET", f"/api/v1/users/{v.owner.id}", {}),
        ("PATCH", f"/api/v1/users/{v.owner.id}", {"json": {"name": "Hijacked"}}),
        ("DELETE", f"{API_KEYS}/{v.api_key['id']}", {}),
    ]


def _object_requests(v: VictimObjects) -> list[tuple[str, str, dict[str, Any]]]:
    """Every route that names an object by id, as (method, path, request kwargs)."""
    detection = f"/api/v1/detect/{v.detection_id}"
    return [
        *_account_requests(v),
        ("GET", detection, {}),
        ("DELETE", detection, {}),
        ("GET", f"{detection}/image", {}),
        ("GET", f"{detection}/image", {"params": {"annotated": "false"}}),
        ("GET", f"/api/v1/detect/jobs/{v.job_id}", {}),
        ("DELETE", f"/api/v1/detect/jobs/{v.job_id}", {}),
        ("GET", f"/api/v1/detect/jobs/{v.video_job_id}", {}),
        ("DELETE", f"/api/v1/detect/jobs/{v.video_job_id}", {}),
        ("GET", f"/api/v1/detect/jobs/{v.video_job_id}/frames", {}),
        ("GET", f"/api/v1/detect/jobs/{v.video_job_id}/annotated", {}),
        ("DELETE", f"{WEBHOOKS}/{v.webhook_id}", {}),
        ("GET", f"{WEBHOOKS}/{v.webhook_id}/deliveries", {}),
        ("POST", f"{WEBHOOKS}/{v.webhook_id}/deliveries/{uuid.uuid4()}/redeliver", {}),
    ]


@pytest.mark.parametrize("credential", ["bearer", "api_key"])
async def test_another_users_objects_are_not_found_on_every_route(
    gateway_client: httpx.AsyncClient, victim: VictimObjects, credential: str
) -> None:
    attacker = await _user(gateway_client)
    if credential == "bearer":
        headers = attacker.headers
    else:
        headers = {"X-API-Key": (await _api_key(gateway_client, attacker))["secret"]}
    session_only = _account_requests(victim) if credential == "api_key" else []
    for method, path, kwargs in _object_requests(victim):
        response = await gateway_client.request(method, path, headers=headers, **kwargs)
        # An API key is refused the account routes whatever the id (403 before any lookup);
        # everything else finds nothing. Neither reveals that the id exists.
        if (method, path, kwargs) in session_only:
            api_error_with_request_id(response, 403, "session_required")
        else:
            api_error_with_request_id(response, 404, "not_found")
    # Nothing leaks through the lists either.
    assert (await gateway_client.get(HISTORY, headers=headers)).json()["total"] == 0
    assert (await gateway_client.get(WEBHOOKS, headers=headers)).json()["items"] == []
    keys = (await gateway_client.get(API_KEYS, headers=attacker.headers)).json()["items"]
    assert victim.api_key["id"] not in {key["id"] for key in keys}
    # ...and the owner's objects are untouched.
    owner = victim.owner
    assert (await gateway_client.get(ME, headers=owner.headers)).json()["name"] != "Hijacked"
    by_key = await gateway_client.get(ME, headers={"X-API-Key": victim.api_key["secret"]})
    assert by_key.status_code == 200
    hooks = (await gateway_client.get(WEBHOOKS, headers=owner.headers)).json()["items"]
    assert [hook["id"] for hook in hooks] == [victim.webhook_id]
    for method, path, kwargs in _object_requests(victim):
        if method == "GET":
            mine = await gateway_client.get(path, headers=owner.headers, **kwargs)
            assert mine.status_code == 200, (path, mine.text)


async def _ws_close_code(
    url: str, headers: dict[str, str], first: str | bytes | None = None
) -> int:
    async with connect(url, additional_headers=headers, open_timeout=10) as socket:
        if first is not None:
            await socket.send(first)
        try:
            while True:
                await asyncio.wait_for(socket.recv(), timeout=20)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code
    raise AssertionError("unreachable")  # pragma: no cover


async def test_another_users_job_stream_closes_with_4404(
    stack: Stack, gateway_client: httpx.AsyncClient, victim: VictimObjects
) -> None:
    attacker = await _user(gateway_client)
    key = (await _api_key(gateway_client, attacker))["secret"]
    base = stack.gateway_url.replace("http://", "ws://")
    url = f"{base}/api/v1/ws/jobs/{victim.job_id}"
    assert await _ws_close_code(url, attacker.headers) == 4404
    assert await _ws_close_code(url, {"X-API-Key": key}) == 4404
    token_message = f'{{"token": "{attacker.access_token}"}}'
    assert await _ws_close_code(url, {}, first=token_message) == 4404
    assert await _ws_close_code(f"{base}/api/v1/ws/jobs/{uuid.uuid4()}", attacker.headers) == 4404
    # No credentials, or junk ones: 4401, never a stream.
    assert await _ws_close_code(url, {}, first='{"token": "junk"}') == 4401
    # A first message far longer than any token message is refused unread, a valid token in
    # it or not (the socket takes frames as large as an upload, for live detection).
    padded = f'{{"token": "{victim.owner.access_token}", "pad": "{"x" * 4_000_000}"}}'
    assert await _ws_close_code(url, {}, first=padded) == 4401
    assert await _ws_close_code(url, {}, first=token_message.encode()) == 4404
    assert await _ws_close_code(url, {"Authorization": "Bearer junk"}) == 4401
    # The owner is served (the job is long finished: its final event, then 1000).
    assert await _ws_close_code(url, victim.owner.headers) == 1000


# ---------------------------------------------------------------- uploads


@needs_images
@pytest.mark.parametrize(
    ("filename", "shown"),
    [
        ("../../etc/passwd.jpg", "passwd.jpg"),
        ("..\\..\\..\\windows\\system32\\evil.jpg", "evil.jpg"),
        ("/etc/cron.d/evil.jpg", "evil.jpg"),
        (". ..hidden.jpg", "hidden.jpg"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        # Terminal escapes and a bell (httpx itself percent-encodes CR, LF and quotes).
        ("\x07bell\x1b[31mred.jpg", "bell[31mred.jpg"),
    ],
)
async def test_upload_filenames_are_display_text_never_paths(
    stack: Stack, gateway_client: httpx.AsyncClient, filename: str, shown: str
) -> None:
    user = await _user(gateway_client)
    body, content_type = _multipart(filename.encode(), BUS_JPG.read_bytes())
    response = await gateway_client.post(
        IMAGE, content=body, headers={**user.headers, "Content-Type": content_type}
    )
    assert response.status_code == 200, response.text
    assert response.json()["filename"] == shown
    stored = await gateway_client.get(
        f"/api/v1/detect/{response.json()['detection_id']}", headers=user.headers
    )
    assert stored.json()["filename"] == shown
    _assert_storage_holds_only_random_keys(stack)


def _multipart(filename: bytes, data: bytes) -> tuple[bytes, str]:
    """One `file` part whose filename goes on the wire byte for byte (httpx would
    percent-encode control characters and quotes, as browsers do)."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\nContent-Type: image/jpeg\r\n\r\n'
    )
    return head + data + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def _assert_storage_holds_only_random_keys(stack: Stack) -> None:
    """Every stored object sits at objects/<2 hex>/<32 hex>; nothing was written elsewhere
    under the data dir by name, and nothing outside it (../../etc/passwd.jpg)."""
    storage = stack.data_dir / "objects"
    files = [path for path in storage.rglob("*") if path.is_file()]
    assert files, "the upload was not stored at all"
    for path in files:
        assert STORAGE_KEY.fullmatch(path.relative_to(storage).as_posix()), path
    for root in (stack.data_dir, stack.data_dir.parent, Path("/etc")):
        assert not (root / "passwd.jpg").exists()
        assert not (root / "etc" / "passwd.jpg").exists()
    assert not list(stack.data_dir.rglob("*evil*"))


@needs_images
async def test_a_jpeg_pixel_bomb_is_refused_from_its_header(
    gateway_client: httpx.AsyncClient,
) -> None:
    """The PNG bomb is in tests/test_detect_api.py; a JPEG SOF header lies the same way."""
    user = await _user(gateway_client)
    started = time.perf_counter()
    single = await gateway_client.post(
        IMAGE, files={"file": ("bomb.jpg", _jpeg_bomb(), "image/jpeg")}, headers=user.headers
    )
    assert "65500x65500" in api_error_with_request_id(single, 413, "payload_too_large")["message"]
    only_bombs = await gateway_client.post(
        BATCH,
        files=[("files", ("bomb.jpg", _jpeg_bomb(), "image/jpeg"))] * 2,
        headers=user.headers,
    )
    api_error_with_request_id(only_bombs, 413, "payload_too_large")
    # Beside a good file, the bomb fails its own item from its header: nothing decoded it.
    batch = await gateway_client.post(
        BATCH,
        files=[
            ("files", ("bus.jpg", BUS_JPG.read_bytes(), "image/jpeg")),
            ("files", ("bomb.jpg", _jpeg_bomb(), "image/jpeg")),
        ],
        headers=user.headers,
    )
    assert batch.status_code == 202, batch.text
    items = {item["filename"]: item for item in batch.json()["items"]}
    assert items["bomb.jpg"]["status"] == "failed"
    assert "65500x65500" in items["bomb.jpg"]["error"]
    assert time.perf_counter() - started < 5


async def test_malformed_multipart_bodies_are_clean_4xx(gateway_client: httpx.AsyncClient) -> None:
    user = await _user(gateway_client)
    cases = [
        (
            b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
            "multipart/form-data; boundary=x",
        ),
        (b"no boundary at all", "multipart/form-data"),
        (b"\x00" * 1024, "multipart/form-data; boundary=" + "b" * 300),
    ]
    for body, content_type in cases:
        response = await gateway_client.post(
            IMAGE, content=body, headers={**user.headers, "Content-Type": content_type}
        )
        assert 400 <= response.status_code < 500, response.text
        assert "Traceback" not in response.text
        api_error_with_request_id(response, response.status_code)


# ---------------------------------------------------------------- header injection


async def _notification_rows(stack: Stack, email: str) -> list[asyncpg.Record]:
    url = stack.database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(
            "SELECT state, last_error FROM notification.deliveries WHERE target = $1", email
        )
    finally:
        await connection.close()


@pytest.mark.parametrize(
    "name", ["Eve\r\nBcc: victim@example.com", "Eve\nX-Evil: 1", "Eve\rX", "Eve\x00", "Eve\x85X"]
)
async def test_a_name_with_control_characters_is_refused_at_signup(
    gateway_client: httpx.AsyncClient, name: str
) -> None:
    response = await gateway_client.post(
        SIGNUP,
        json={"email": _email(), "password": PASSWORD, "name": name},
        headers=fresh_network(),
    )
    api_error_with_request_id(response, 422, "validation_error")
    user = await _user(gateway_client)
    renamed = await gateway_client.patch(ME, json={"name": name}, headers=user.headers)
    api_error_with_request_id(renamed, 422, "validation_error")


@pytest.mark.parametrize("separator", ["\u2028", "\u2029"], ids=["U+2028", "U+2029"])
async def test_a_unicode_line_separator_in_a_name_is_refused_before_it_can_reach_a_mail_header(
    gateway_client: httpx.AsyncClient, separator: str
) -> None:
    """Not control characters, but mail clients and log readers break lines on them."""
    name = f"Eve{separator}Bcc: victim@example.com"
    response = await gateway_client.post(
        SIGNUP,
        json={"email": _email("ls"), "password": PASSWORD, "name": name},
        headers=fresh_network(),
    )
    api_error_with_request_id(response, 422, "validation_error")
    user = await _user(gateway_client)
    renamed = await gateway_client.patch(ME, json={"name": name}, headers=user.headers)
    api_error_with_request_id(renamed, 422, "validation_error")


# ---------------------------------------------------------------- SSRF


@pytest.mark.parametrize(
    "url",
    [
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "dict://127.0.0.1:6379/info",
        "file:///etc/passwd",
        "http://10.0.0.1/hook",
        "http://127.1/hook",
        "http://0x7f000001/hook",
        "http://017700000001/hook",
        "http://[::ffff:169.254.169.254]/latest",
        "http://[fd00:ec2::254]/latest",
        "http://[::]/hook",
        "http://169.254.169.254./latest",
        "http://localhost./hook",
        "http://100.100.100.200/latest",
    ],
)
async def test_ssrf_targets_missing_from_the_service_table_are_refused(url: str) -> None:
    """Adds to notification-service/tests/test_webhooks.py: other schemes, short and hex
    IPv4 forms, IPv6-mapped metadata, trailing dots, CGNAT (Alibaba's metadata)."""
    with pytest.raises(ForbiddenTarget):
        await checked_target(url, allow_private=False)


@given(
    address=st.one_of(
        *(
            st.ip_addresses(network=network)
            for network in (
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "127.0.0.0/8",
                "169.254.0.0/16",
                "100.64.0.0/10",
                "0.0.0.0/8",
                "224.0.0.0/4",
                "::1/128",
                "fc00::/7",
                "fe80::/10",
            )
        )
    )
)
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_internal_address_is_forbidden_in_every_spelling(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assert is_forbidden_address(address)
    if isinstance(address, ipaddress.IPv4Address):
        assert is_forbidden_address(ipaddress.IPv6Address(f"::ffff:{address}"))
        sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80))
        assert is_forbidden_address(sixtofour)


def test_the_webhook_client_follows_no_redirect_and_no_proxy() -> None:
    """A 302 to 169.254.169.254 would skip the address check; a proxy would hide it."""

    async def check() -> None:
        async with pinned_http_client() as client:
            assert client.follow_redirects is False
            assert client._trust_env is False

    asyncio.run(check())


@dataclass
class StrictGateway:
    url: str


@pytest.fixture(scope="module")
def strict_gateway(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StrictGateway]:
    """A gateway whose notification-service refuses private targets (production setting).

    The notification-service gets its own database and event stream, so its consumer and
    dispatcher never see the shared stack's events or deliveries; auth and detection are
    the shared ones.
    """
    logs = tmp_path_factory.mktemp("strict") / "logs"
    database = f"strict_{uuid.uuid4().hex[:8]}"
    admin_url = stack.database_url.replace("postgresql+asyncpg://", "postgresql://")
    asyncio.run(_create_database(admin_url, database))
    base, _, _ = stack.database_url.rpartition("/")
    notification_port, gateway_port = free_port(), free_port()
    env = {
        **stack.env,
        "DATABASE_URL": f"{base}/{database}",
        "WEBHOOK_ALLOW_PRIVATE": "false",
        "EVENTS_STREAM": f"objectvision:events:strict:{database}",
        "EVENTS_CONSUMER_GROUP": f"strict-{database}",
        "NOTIFICATION_GRPC_PORT": str(notification_port),
        "NOTIFICATION_METRICS_PORT": str(free_port()),
        "NOTIFICATION_SERVICE_ADDR": f"127.0.0.1:{notification_port}",
        "GATEWAY_PORT": str(gateway_port),
    }
    migrated = subprocess.run(
        [_bin("objectvision-notification"), "migrate"], env=env, capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    notification = ManagedProcess(
        "strict-notification",
        [_bin("objectvision-notification"), "serve"],
        env=env,
        log_path=logs / "notification.log",
    )
    gateway = ManagedProcess(
        "strict-gateway", [_bin("objectvision-gateway")], env=env, log_path=logs / "gateway.log"
    )
    try:
        notification.start()
        notification.wait_ready(lambda: _port_serving(notification_port), timeout=60)
        gateway.start()
        url = f"http://127.0.0.1:{gateway_port}"
        gateway.wait_ready(lambda: http_ok(f"{url}/health"), timeout=60)
        yield StrictGateway(url=url)
    finally:
        gateway.stop()
        notification.stop()


def _port_serving(port: int) -> bool:
    return grpc_serving(f"127.0.0.1:{port}")


def _bin(command: str) -> str:
    """A console script installed beside the running interpreter (as the stack starts them)."""
    return str(Path(sys.executable).with_name(command))


async def _create_database(url: str, name: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


STRICT_REFUSED = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://10.0.0.1/hook",
    "http://localhost/hook",
    "http://localhost:6379/",
    "http://[::1]/hook",
    "http://127.0.0.1:5432/",
    "http://0x7f000001/hook",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "https://user:secret@example.com/hook",
]


async def test_the_public_api_refuses_ssrf_webhook_targets(
    strict_gateway: StrictGateway, gateway_client: httpx.AsyncClient
) -> None:
    user = await _user(gateway_client)
    async with httpx.AsyncClient(base_url=strict_gateway.url, timeout=30) as client:
        for url in STRICT_REFUSED:
            response = await client.post(WEBHOOKS, json={"url": url}, headers=user.headers)
            error = api_error_with_request_id(response, 422)
            assert error["code"] == "webhook_target_forbidden", (url, error)
        assert (await client.get(WEBHOOKS, headers=user.headers)).json()["items"] == []
        # The control: a public literal address is accepted by the same gateway.
        public = await client.post(
            WEBHOOKS, json={"url": "https://93.184.215.14/hook"}, headers=user.headers
        )
        assert public.status_code == 201, public.text
        deleted = await client.delete(f"{WEBHOOKS}/{public.json()['id']}", headers=user.headers)
        assert deleted.status_code == 204


# ---------------------------------------------------------------- internal gRPC


def _principal(user_id: str) -> common_pb2.Principal:
    return common_pb2.Principal(user_id=user_id, auth_method="jwt", credential_id="x")


def _internal_calls(stack: Stack) -> list[tuple[str, Any]]:
    """(name, call(metadata)) for per-user RPCs of every internal service."""
    auth = auth_pb2_grpc.AuthServiceStub(grpc.insecure_channel(stack.service_address("auth")))
    detection = detection_pb2_grpc.DetectionServiceStub(
        grpc.insecure_channel(stack.service_address("detection"))
    )
    notification = notification_pb2_grpc.NotificationServiceStub(
        grpc.insecure_channel(stack.service_address("notification"))
    )
    return [
        (
            "auth.ListApiKeys",
            lambda md: auth.ListApiKeys(auth_pb2.ListApiKeysRequest(), metadata=md, timeout=10),
        ),
        (
            "auth.CreateApiKey",
            lambda md: auth.CreateApiKey(
                auth_pb2.CreateApiKeyRequest(name="x"), metadata=md, timeout=10
            ),
        ),
        (
            "detection.ListDetections",
            lambda md: detection.ListDetections(
                detection_pb2.ListDetectionsRequest(page=common_pb2.Page(limit=1)),
                metadata=md,
                timeout=10,
            ),
        ),
        (
            "detection.Detect",
            lambda md: detection.Detect(
                detection_pb2.DetectRequest(
                    images=[detection_pb2.ImageInput(data=b"\xff\xd8junk")]
                ),
                metadata=md,
                timeout=10,
            ),
        ),
        (
            "detection.GetJob",
            lambda md: detection.GetJob(
                detection_pb2.GetJobRequest(job_id=str(uuid.uuid4())), metadata=md, timeout=10
            ),
        ),
        (
            "notification.ListWebhooks",
            lambda md: notification.ListWebhooks(
                notification_pb2.ListWebhooksRequest(), metadata=md, timeout=10
            ),
        ),
    ]


async def test_internal_services_refuse_unsigned_and_forged_principals(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    user = await _user(gateway_client)
    secret = stack.env["SERVICE_TOKEN_SECRET"]
    forged = principal_metadata(_principal(user.id), secret="not-the-service-secret")
    expired = principal_metadata(_principal(user.id), secret=secret, now=time.time() - 3600)
    (header, _payload), (signature_header, signature) = principal_metadata(
        _principal(user.id), secret=secret
    )
    other = principal_metadata(_principal(str(uuid.uuid4())), secret=secret)
    spliced = ((header, other[0][1]), (signature_header, signature))
    for name, call in _internal_calls(stack):
        for label, metadata in (
            ("none", ()),
            ("wrong secret", forged),
            ("expired", expired),
            ("spliced", spliced),
        ):
            with pytest.raises(grpc.RpcError) as refused:
                await asyncio.to_thread(call, metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, (name, label)
    # The control: the same calls signed with the real secret are served (or fail on their
    # merits), which proves the refusals above were about the signature.
    genuine = principal_metadata(_principal(user.id), secret=secret)
    for name, call in _internal_calls(stack):
        try:
            await asyncio.to_thread(call, genuine)
        except grpc.RpcError as exc:
            assert exc.code() in (
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.PERMISSION_DENIED,
            ), (name, exc.code())


# ---------------------------------------------------------------- secrets in logs


async def test_secrets_and_tokens_never_reach_the_logs(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    """Runs every flow that carries a secret, then reads every log file of the stack."""
    password = f"pw-{uuid.uuid4().hex}"
    wrong_password = f"wrong-{uuid.uuid4().hex}"
    user = await _user(gateway_client, password=password)
    secrets: dict[str, str] = {
        "password": password,
        "wrong password": wrong_password,
        "access token": user.access_token,
        "access token signature": user.access_token.rsplit(".", 1)[1],
        "refresh token": user.refresh_token,
    }
    address = fresh_network()
    await gateway_client.post(
        LOGIN, json={"email": user.email, "password": wrong_password}, headers=address
    )
    await gateway_client.post(
        LOGIN, data={"username": user.email, "password": wrong_password}, headers=address
    )
    too_long = f"{password}{'x' * 200}"
    await gateway_client.post(
        SIGNUP, json={"email": _email(), "password": too_long, "name": "N"}, headers=address
    )
    await gateway_client.patch(
        ME,
        json={"password": f"new-{password}", "current_password": wrong_password},
        headers=user.headers,
    )
    key = await _api_key(gateway_client, user, "log-check")
    secrets["api key"] = key["secret"]
    assert (await gateway_client.get(ME, headers={"X-API-Key": key["secret"]})).status_code == 200
    await gateway_client.get(ME, headers={"X-API-Key": key["secret"] + "x"})
    await gateway_client.get(f"{ME}?access_token={user.access_token}", headers=user.headers)
    hook = await gateway_client.post(
        WEBHOOKS, json={"url": f"http://127.0.0.1:{free_port()}/h"}, headers=user.headers
    )
    assert hook.status_code == 201, hook.text
    secrets["webhook secret"] = hook.json()["secret"]
    refreshed = await gateway_client.post(REFRESH, json={"refresh_token": user.refresh_token})
    assert refreshed.status_code == 200
    pair = refreshed.json()
    secrets["rotated access token"] = pair["access_token"]
    secrets["rotated refresh token"] = pair["refresh_token"]
    await gateway_client.post(REFRESH, json={"refresh_token": user.refresh_token})  # reuse
    logout = await gateway_client.post(
        LOGOUT,
        json={"refresh_token": pair["refresh_token"]},
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )
    assert logout.status_code in (204, 401)
    # A websocket token sent as the first message (never in the URL).
    url = f"{stack.gateway_url.replace('http://', 'ws://')}/api/v1/ws/jobs/{uuid.uuid4()}"
    await _ws_close_code(url, {}, first=f'{{"token": "{user.access_token}"}}')
    await asyncio.sleep(1.0)  # unbuffered writers; give the last lines a moment

    files = [path for path in stack.logs_dir.rglob("*") if path.is_file()]
    assert {"gateway.log", "auth.log", "detection.log", "notification.log"} <= {
        path.name for path in files
    }
    leaks = [
        f"{name} in {path.name}"
        for path in files
        for name, secret in secrets.items()
        if secret.encode() in path.read_bytes()
    ]
    assert not leaks, leaks
