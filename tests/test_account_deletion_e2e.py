"""Deleting an account end to end (ADR 0025), every part real: `DELETE /api/v1/users/me`
through the gateway, auth-service deleting the account and staging `user.deleted` in the same
commit, its relay, the Redis events stream, detection-service and notification-service each
erasing the user's data in their own consumer group, and the stack's SMTP sink.

Done when: a user with a stored detection, a finished batch job, an API key and a webhook
deletes their account; at once nothing of theirs logs in or authenticates, and their address
can sign up again; eventually none of their rows or stored files remain in any service and
the goodbye email has arrived. "Eventually" is polled on those outcomes with a bounded
deadline.

Uses `stack`, `gateway_client` and `hook_receiver` (tests/conftest.py); the user has its own
X-Forwarded-For address (the stack trusts it).
"""

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from objectvision_common.db import sync_url
from objectvision_devstack.api_users import PASSWORD, fresh_network, log_in, sign_up, signed_in
from objectvision_devstack.mail import Mailbox
from objectvision_devstack.stack import Stack
from objectvision_devstack.waiting import eventually

IMAGES = (
    Path(os.environ.get("OBJECTVISION_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    / "images"
)
BUS = IMAGES / "bus.jpg"
ZIDANE = IMAGES / "zidane.jpg"
GOODBYE_SUBJECT = "Your ObjectVision account was deleted"
# A bound, not the expected time (an event leaves at its commit): the machine may be busy.
ERASED_WITHIN_SECONDS = 90.0
POLL_SECONDS = 0.2
# Every table, in every service's schema, that holds something of a user, and its user column.
USER_ROWS = {
    "auth.users": "id::text",
    "auth.refresh_tokens": "user_id::text",
    "auth.api_keys": "user_id::text",
    "auth.user_settings": "user_id::text",
    "detection.detections": "user_id",
    "detection.images": "user_id",
    "detection.jobs": "user_id",
    "notification.webhooks": "user_id::text",
    "notification.deliveries": "user_id::text",
}

pytestmark = pytest.mark.skipif(not BUS.exists(), reason=f"sample images not found under {IMAGES}")


class Rows:
    """The stack's database, read directly: what each service keeps of a user."""

    def __init__(self, stack: Stack) -> None:
        self.engine = create_engine(sync_url(stack.database_url))

    def of(self, user_id: str) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                table: connection.execute(
                    text(f"SELECT count(*) FROM {table} WHERE {column} = :id"),  # noqa: S608
                    {"id": user_id},
                ).scalar_one()
                for table, column in USER_ROWS.items()
            }

    def storage_keys(self, user_id: str) -> list[str]:
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    text("SELECT storage_key FROM detection.images WHERE user_id = :id"),
                    {"id": user_id},
                ).scalars()
            )


@pytest.fixture
def rows(stack: Stack) -> Iterator[Rows]:
    found = Rows(stack)
    yield found
    found.engine.dispose()


async def test_a_deleted_account_loses_everything_everywhere_and_gets_one_goodbye(
    gateway_client: httpx.AsyncClient,
    stack: Stack,
    mailbox: Mailbox,
    hook_receiver: Any,
    rows: Rows,
) -> None:
    network = fresh_network()
    leaving = await signed_in(
        gateway_client, prefix="leaving", name="Leaving User", network=network, read_back=True
    )
    address, session, user_id = leaving.email, leaving.headers, leaving.id
    key = await gateway_client.post(
        "/api/v1/users/me/api-keys", json={"name": "ci"}, headers=session
    )
    assert key.status_code == 201, key.text
    as_key = {"X-API-Key": key.json()["secret"]}
    hook = await gateway_client.post(
        "/api/v1/webhooks", json={"url": hook_receiver.url}, headers=session
    )
    assert hook.status_code == 201, hook.text
    detected = await gateway_client.post(
        "/api/v1/detect/image",
        files={"file": ("bus.jpg", BUS.read_bytes(), "image/jpeg")},
        headers=session,
    )
    assert detected.status_code == 200, detected.text
    submitted = await gateway_client.post(
        "/api/v1/detect/batch",
        files=[("files", ("zidane.jpg", ZIDANE.read_bytes(), "image/jpeg"))],
        headers=session,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]

    async def finished() -> bool:
        job = (await gateway_client.get(f"/api/v1/detect/jobs/{job_id}", headers=session)).json()
        return job["status"] == "completed"

    deadline = time.monotonic() + ERASED_WITHIN_SECONDS
    while not await finished():
        assert time.monotonic() < deadline, "the batch job did not finish"
        await asyncio.sleep(POLL_SECONDS)
    # The job's final event reached the webhook: a delivery of the user's is on record.
    await eventually(
        lambda: [p for p in hook_receiver.received() if b'"job.completed"' in p.body],
        within=ERASED_WITHIN_SECONDS,
        what="the job.completed webhook",
        interval=POLL_SECONDS,
    )
    before = rows.of(user_id)
    assert all(before[table] > 0 for table in USER_ROWS), before
    keys = rows.storage_keys(user_id)
    objects = stack.data_dir / "objects"
    assert len(keys) == 2 and all((objects / k[:2] / k).is_file() for k in keys)

    wrong = await gateway_client.request(
        "DELETE", "/api/v1/users/me", json={"current_password": "not my password"}, headers=session
    )
    assert wrong.status_code == 403, wrong.text
    assert wrong.json()["error"]["code"] == "permission_denied"
    assert rows.of(user_id) == before

    deleted = await gateway_client.request(
        "DELETE", "/api/v1/users/me", json={"current_password": PASSWORD}, headers=session
    )

    assert deleted.status_code == 202, deleted.text
    assert "being erased" in deleted.json()["message"]
    # At once: no session, no key, no login, no refresh.
    for headers in (session, as_key):
        answer = await gateway_client.get("/api/v1/users/me", headers=headers)
        assert answer.status_code == 401, answer.text
    login = await log_in(gateway_client, address, PASSWORD, network=network)
    assert login.status_code == 401, login.text
    refresh = await gateway_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": leaving.refresh_token}
    )
    assert refresh.status_code == 401, refresh.text

    # Eventually: the goodbye in the inbox, and nothing of the user in any service.
    [goodbye] = await eventually(
        lambda: mailbox.about(address, GOODBYE_SUBJECT),
        within=ERASED_WITHIN_SECONDS,
        what="the goodbye email",
        interval=POLL_SECONDS,
    )
    body = goodbye.get_body(preferencelist=("plain",))
    assert body is not None
    goodbye_text = " ".join(body.get_content().split())
    assert f"your ObjectVision account, {address}, was deleted on" in goodbye_text
    await eventually(
        lambda: all(count == 0 for count in rows.of(user_id).values()),
        within=ERASED_WITHIN_SECONDS,
        what=f"the erasure of every row ({rows.of(user_id)})",
        interval=POLL_SECONDS,
    )
    assert not any((objects / k[:2] / k).exists() for k in keys)

    # The address is free: a new, empty account.
    again = await sign_up(gateway_client, address, "Back Again", password="a new passphrase")
    assert again.status_code == 202, again.text
    relogin = await log_in(gateway_client, address, "a new passphrase")
    assert relogin.status_code == 200, relogin.text
    fresh = {"Authorization": f"Bearer {relogin.json()['access_token']}"}
    assert (await gateway_client.get("/api/v1/users/me", headers=fresh)).json()["id"] != user_id
    assert (await gateway_client.get("/api/v1/detect/history", headers=fresh)).json()["total"] == 0
    assert (await gateway_client.get("/api/v1/webhooks", headers=fresh)).json()["items"] == []
    assert len(mailbox.about(address, GOODBYE_SUBJECT)) == 1
