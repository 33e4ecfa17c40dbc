"""API key scopes and expiry through the public REST API, on the shared stack (ADR 0026).

A key does what its scopes allow and nothing else; no key manages the account or its keys,
so a leaked one cannot mint a successor that outlives its revocation; an expired key says
so. One detection in all (a detect-only key's), shared by the tests that read it back; every
other refusal is answered before any service does work.
"""

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from objectvision_client import AsyncClient, TokenPair
from objectvision_client.operations import API_KEY_SCOPES, MAX_API_KEY_LIFETIME_DAYS
from objectvision_common.api_keys import ALL_SCOPES, MAX_LIFETIME_DAYS
from objectvision_common.db import sync_url
from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import PASSWORD, Account, signed_in
from objectvision_devstack.stack import Stack

ME = "/api/v1/users/me"
SETTINGS = "/api/v1/users/me/settings"
API_KEYS = "/api/v1/users/me/api-keys"
IMAGE = "/api/v1/detect/image"
HISTORY = "/api/v1/detect/history"
WEBHOOKS = "/api/v1/webhooks"
BUS = (
    Path(os.environ.get("OBJECTVISION_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    / "images"
    / "bus.jpg"
)


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as opened:
        yield opened


@pytest.fixture(scope="module")
async def owner(client: httpx.AsyncClient) -> Account:
    return await signed_in(client, prefix="scopes", name="Scoped Keys", read_back=True)


async def _key(client: httpx.AsyncClient, owner: Account, **body: Any) -> dict[str, Any]:
    created = await client.post(
        API_KEYS, json={"name": f"key-{uuid.uuid4().hex[:6]}", **body}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


def _with(key: dict[str, Any]) -> dict[str, str]:
    return {"X-API-Key": key["secret"]}


@pytest.fixture(scope="module")
async def detect_only(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    return await _key(client, owner, scopes=["detect"])


@pytest.fixture(scope="module")
async def detection_id(client: httpx.AsyncClient, detect_only: dict[str, Any]) -> str:
    """The module's one detection, made with the detect-only key."""
    detected = await client.post(
        IMAGE,
        files={"file": ("bus.jpg", BUS.read_bytes(), "image/jpeg")},
        headers=_with(detect_only),
    )
    assert detected.status_code == 200, detected.text
    return str(detected.json()["detection_id"])


async def _ws_close_code(stack: Stack, job_id: str, headers: dict[str, str]) -> int:
    url = f"{stack.gateway_url.replace('http://', 'ws://')}/api/v1/ws/jobs/{job_id}"
    async with connect(url, additional_headers=headers, open_timeout=10) as socket:
        try:
            while True:
                await socket.recv()
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code
    raise AssertionError("unreachable")  # pragma: no cover


async def test_a_detect_only_key_detects_but_reads_no_results_and_no_webhooks(
    stack: Stack,
    client: httpx.AsyncClient,
    detect_only: dict[str, Any],
    detection_id: str,
) -> None:
    assert detect_only["scopes"] == ["detect"]
    headers = _with(detect_only)
    assert (await client.get("/api/v1/models", headers=headers)).status_code == 200

    history = await client.get(HISTORY, headers=headers)
    assert "'results:read'" in api_error(history, 403, "insufficient_scope")["message"]
    one = await client.get(f"/api/v1/detect/{detection_id}", headers=headers)
    assert "'results:read'" in api_error(one, 403, "insufficient_scope")["message"]
    for refused in (
        await client.get(WEBHOOKS, headers=headers),
        await client.post(WEBHOOKS, json={"url": "https://example.com/hook"}, headers=headers),
    ):
        assert "'webhooks'" in api_error(refused, 403, "insufficient_scope")["message"]
    delete = await client.delete(f"/api/v1/detect/{detection_id}", headers=headers)
    assert "'results:write'" in api_error(delete, 403, "insufficient_scope")["message"]
    # Running stored images again says what was stored (how many the filters keep, their
    # names, a replayed job's counts): a results read as well as a detection.
    for rerun in (
        await client.post(f"{HISTORY}/rerun", params={"filename": "bus"}, headers=headers),
        await client.post(f"/api/v1/detect/jobs/{uuid.uuid4()}/rerun", headers=headers),
    ):
        assert api_error(rerun, 403, "insufficient_scope")["message"] == (
            "this API key lacks the 'results:read' scope this needs; create a key with that"
            " scope from a signed-in session"
        )
    # The job stream is a results read too: 4403 before any job is looked up.
    assert await _ws_close_code(stack, str(uuid.uuid4()), headers) == 4403


async def test_a_results_read_key_reads_the_history_but_cannot_delete(
    stack: Stack, client: httpx.AsyncClient, owner: Account, detection_id: str
) -> None:
    # Made through the Python client, on the owner's session.
    async with AsyncClient(
        stack.gateway_url,
        tokens=TokenPair(access_token=owner.access_token, refresh_token=owner.refresh_token),
    ) as api:
        created = await api.create_api_key("reader", scopes=["results:read"], expires_in_days=30)
    assert created.scopes == ("results:read",) and created.expires_at is not None
    headers = {"X-API-Key": created.secret}

    history = await client.get(HISTORY, headers=headers)
    assert history.status_code == 200, history.text
    assert [item["detection_id"] for item in history.json()["items"]] == [detection_id]
    assert (await client.get(f"/api/v1/detect/{detection_id}", headers=headers)).status_code == 200

    delete = await client.delete(f"/api/v1/detect/{detection_id}", headers=headers)
    assert "'results:write'" in api_error(delete, 403, "insufficient_scope")["message"]
    delete_all = await client.delete(HISTORY, params={"all": "true"}, headers=headers)
    assert "'results:write'" in api_error(delete_all, 403, "insufficient_scope")["message"]
    cancel = await client.post(f"/api/v1/detect/jobs/{uuid.uuid4()}/cancel", headers=headers)
    api_error(cancel, 403, "insufficient_scope")
    upload = await client.post(
        IMAGE, files={"file": ("x.jpg", b"\xff\xd8\xff", "image/jpeg")}, headers=headers
    )
    assert "'detect'" in api_error(upload, 403, "insufficient_scope")["message"]
    rerun = await client.post(f"{HISTORY}/rerun", headers=headers)
    assert "lacks the 'detect' scope" in api_error(rerun, 403, "insufficient_scope")["message"]
    # Past the scope check, the stream looks the job up as usual.
    assert await _ws_close_code(stack, str(uuid.uuid4()), headers) == 4404
    kept = await client.get(f"/api/v1/detect/{detection_id}", headers=owner.headers)
    assert kept.status_code == 200, kept.text


async def test_no_key_manages_the_account_whatever_its_scopes(
    client: httpx.AsyncClient, owner: Account
) -> None:
    every_scope = await _key(client, owner)
    assert every_scope["scopes"] == [scope.value for scope in ALL_SCOPES]
    headers = _with(every_scope)

    for refused in (
        await client.post(API_KEYS, json={"name": "successor"}, headers=headers),
        await client.get(API_KEYS, headers=headers),
        await client.delete(f"{API_KEYS}/{every_scope['id']}", headers=headers),
        await client.patch(ME, json={"name": "Taken Over"}, headers=headers),
        await client.request("DELETE", ME, json={"current_password": PASSWORD}, headers=headers),
        await client.patch(SETTINGS, json={"notifications_enabled": False}, headers=headers),
        await client.get(f"/api/v1/users/{owner.id}", headers=headers),
    ):
        assert "signed-in session" in api_error(refused, 403, "session_required")["message"]

    # "Who am I" stays open to any key.
    me = await client.get(ME, headers=headers)
    assert me.status_code == 200 and me.json()["id"] == owner.id
    assert (await client.get("/api/v1/users/get-profile", headers=headers)).status_code == 200
    assert (await client.get(SETTINGS, headers=headers)).status_code == 200
    # Nothing changed, and the key minted nothing.
    mine = await client.get(ME, headers=owner.headers)
    assert mine.json()["name"] == "Scoped Keys"
    listed = (await client.get(API_KEYS, headers=owner.headers)).json()["items"]
    assert "successor" not in {key["name"] for key in listed}


async def test_an_expired_key_is_a_401_that_says_so(
    stack: Stack, client: httpx.AsyncClient, owner: Account
) -> None:
    key = await _key(client, owner, expires_in_days=1)
    assert key["expires_at"] is not None
    assert (await client.get(ME, headers=_with(key))).status_code == 200
    engine = create_engine(sync_url(stack.database_url))
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE auth.api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"
            ),
            {"id": key["id"]},
        )
    engine.dispose()

    expired = await client.get(ME, headers=_with(key))

    assert api_error(expired, 401, "api_key_expired")["message"] == "the API key has expired"
    unknown = await client.get(ME, headers={"X-API-Key": "ov_00000000_nope"})
    assert api_error(unknown, 401, "unauthenticated")["message"] != "the API key has expired"
    listed = {
        item["id"]: item
        for item in (await client.get(API_KEYS, headers=owner.headers)).json()["items"]
    }
    assert listed[key["id"]]["expires_at"] is not None


async def test_unknown_scopes_and_lifetimes_out_of_range_are_422(
    client: httpx.AsyncClient, owner: Account
) -> None:
    unknown = await client.post(
        API_KEYS, json={"name": "x", "scopes": ["detect", "admin"]}, headers=owner.headers
    )
    assert "'results:read'" in api_error(unknown, 422, "validation_error")["message"]
    for days in (0, MAX_LIFETIME_DAYS + 1):
        too = await client.post(
            API_KEYS, json={"name": "x", "expires_in_days": days}, headers=owner.headers
        )
        assert "expires_in_days" in api_error(too, 422, "validation_error")["message"]


def test_the_client_offers_the_scopes_and_lifetime_the_server_has() -> None:
    """The client is its own distribution and names the scopes itself (ADR 0018): the same
    ones, or `--scope` would offer one the server refuses."""
    assert tuple(scope.value for scope in ALL_SCOPES) == API_KEY_SCOPES
    assert MAX_API_KEY_LIFETIME_DAYS == MAX_LIFETIME_DAYS
