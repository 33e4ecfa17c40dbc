"""The gateway routes for webhooks, their deliveries and live job progress, served by uvicorn
on a real port, in front of the in-process notification service."""

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from sqlalchemy import insert
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.routers import ROUTERS, jobs_ws, webhooks
from notification_service.deliveries.models import deliveries
from notification_service.events.models import processed_events
from objectvision.v1 import detection_pb2
from objectvision_devstack.processes import free_port

SERVICE_SECRET = "notification-tests-service-secret"


@pytest.fixture(scope="module")
async def gateway_url(service, peers, infrastructure, wait):
    settings = GatewaySettings(
        REDIS_URL=infrastructure.redis_url,
        AUTH_SERVICE_ADDR=peers.address,
        DETECTION_SERVICE_ADDR=peers.address,
        NOTIFICATION_SERVICE_ADDR=service.address,
        SERVICE_TOKEN_SECRET=SERVICE_SECRET,
        LOG_JSON=False,
    )
    app = create_app(settings)
    for router in (webhooks.router, jobs_ws.router):
        if router not in ROUTERS:
            app.include_router(router)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="on", log_config=None, access_log=False
        )
    )
    task = asyncio.create_task(server.serve())
    await wait(lambda: server.started)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    await task


def bearer(peers, user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {peers.auth.access_token(user_id)}"}


async def test_webhooks_over_rest(gateway_url, peers, new_user) -> None:
    user_id, _ = new_user()
    headers = bearer(peers, user_id)
    async with httpx.AsyncClient(base_url=f"http://{gateway_url}") as client:
        created = await client.post(
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["job.completed"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert set(body) == {
            "id",
            "url",
            "events",
            "created_at",
            "api_key_id",
            "previous_secret_expires_at",
            "enabled",
            "disabled_at",
            "disabled_reason",
            "consecutive_failures",
            "secret",
        }
        assert body["previous_secret_expires_at"] is None  # never rotated
        assert (body["enabled"], body["disabled_at"], body["disabled_reason"]) == (True, None, None)
        assert body["consecutive_failures"] == 0
        assert body["secret"].startswith("whsec_") and body["events"] == ["job.completed"]
        assert body["api_key_id"] is None  # made from a session, not with an API key

        listed = await client.get("/api/v1/webhooks", headers=headers)
        assert listed.status_code == 200
        assert [item["id"] for item in listed.json()["items"]] == [body["id"]]
        assert "secret" not in listed.json()["items"][0]

        deleted = await client.delete(f"/api/v1/webhooks/{body['id']}", headers=headers)
        assert deleted.status_code == 204
        again = await client.delete(f"/api/v1/webhooks/{body['id']}", headers=headers)
        assert again.status_code == 404

        assert (await client.get("/api/v1/webhooks")).status_code == 401
        invalid = await client.post(
            "/api/v1/webhooks", json={"url": "http://x.test", "events": ["nope"]}, headers=headers
        )
        assert invalid.status_code == 422


async def _pending_for_an_hour(service, webhook: dict, user_id: str) -> str:
    """A delivery to `webhook` that stays pending (next attempt in an hour): what a delivery
    between two retries looks like. Returns its id."""
    event_id, delivery_id = uuid.uuid4(), uuid.uuid4()
    async with service.runtime.sessions() as session, session.begin():
        await session.execute(
            insert(processed_events).values(event_id=event_id, event_type="job.completed")
        )
        await session.execute(
            insert(deliveries).values(
                id=delivery_id,
                event_id=event_id,
                event_type="job.completed",
                user_id=uuid.UUID(user_id),
                channel="webhook",
                target=webhook["url"],
                webhook_id=uuid.UUID(webhook["id"]),
                payload={"body": json.dumps({"id": str(event_id), "type": "job.completed"})},
                next_attempt_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
    return str(delivery_id)


async def test_webhook_deliveries_and_redelivery_over_rest(
    gateway_url, service, peers, producer, receiver, new_user, events, wait
) -> None:
    user_id, _ = new_user()
    stranger, _ = new_user()
    headers = bearer(peers, user_id)
    path = f"/rest-deliveries/{user_id}"
    async with httpx.AsyncClient(base_url=f"http://{gateway_url}") as client:
        created = await client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url(path), "events": ["job.completed"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        deliveries_url = f"/api/v1/webhooks/{hook['id']}/deliveries"
        event_id = await producer.publish(events.finished(user_id, str(uuid.uuid4())))

        async def delivered():
            listed = await client.get(
                deliveries_url, params={"state": "delivered"}, headers=headers
            )
            assert listed.status_code == 200, listed.text
            return listed.json()["items"]

        [delivery] = await wait(delivered)
        assert set(delivery) == {
            "id",
            "webhook_id",
            "event_id",
            "event_type",
            "state",
            "attempts",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "created_at",
            "delivered_at",
            "redelivery_of",
        }
        assert (delivery["event_id"], delivery["event_type"], delivery["webhook_id"]) == (
            event_id,
            "job.completed",
            hook["id"],
        )
        assert (delivery["attempts"], delivery["last_status_code"], delivery["last_error"]) == (
            1,
            200,
            None,
        )
        assert delivery["next_attempt_at"] is None and delivery["redelivery_of"] is None

        redeliver_url = f"{deliveries_url}/{delivery['id']}/redeliver"
        queued = await client.post(redeliver_url, headers=headers)
        assert queued.status_code == 202, queued.text
        assert queued.json()["redelivery_of"] == delivery["id"]
        assert (queued.json()["event_id"], queued.json()["state"]) == (event_id, "pending")
        first, again = await wait(
            lambda: len(receiver.received(path)) == 2 and receiver.received(path)
        )
        assert again.body == first.body
        assert again.headers["X-ObjectVision-Delivery"] == queued.json()["id"]

        page = await client.get(deliveries_url, params={"limit": 1}, headers=headers)
        assert page.status_code == 200, page.text
        assert (page.json()["total"], page.json()["limit"], page.json()["offset"]) == (2, 1, 0)
        assert [item["id"] for item in page.json()["items"]] == [queued.json()["id"]]

        pending_id = await _pending_for_an_hour(service, hook, user_id)
        still_pending = await client.post(
            f"{deliveries_url}/{pending_id}/redeliver", headers=headers
        )
        assert still_pending.status_code == 409, still_pending.text
        assert still_pending.json()["error"]["code"] == "failed_precondition"
        assert "still pending" in still_pending.json()["error"]["message"]
        pending = await client.get(deliveries_url, params={"state": "pending"}, headers=headers)
        [waiting] = pending.json()["items"]
        assert waiting["id"] == pending_id and waiting["next_attempt_at"] is not None
        assert waiting["last_attempt_at"] is None and waiting["last_status_code"] is None

        theirs = bearer(peers, stranger)
        for response in (
            await client.get(deliveries_url, headers=theirs),
            await client.post(redeliver_url, headers=theirs),
            await client.post(f"{deliveries_url}/{uuid.uuid4()}/redeliver", headers=headers),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "not_found"
        for invalid in (
            await client.get(deliveries_url, params={"state": "failed"}, headers=headers),
            await client.get(deliveries_url, params={"limit": 101}, headers=headers),
            await client.get(deliveries_url, params={"offset": -1}, headers=headers),
            await client.get("/api/v1/webhooks/not-a-uuid/deliveries", headers=headers),
            await client.post(f"{deliveries_url}/not-a-uuid/redeliver", headers=headers),
        ):
            assert invalid.status_code == 422, invalid.text
        assert (await client.get(deliveries_url)).status_code == 401

        deleted = await client.delete(f"/api/v1/webhooks/{hook['id']}", headers=headers)
        assert deleted.status_code == 204
        gone = await client.post(redeliver_url, headers=headers)
        assert gone.status_code == 404, gone.text
        assert len(receiver.received(path)) == 2


async def test_a_webhook_is_changed_paused_and_pinged_over_rest(
    gateway_url, peers, receiver, new_user, wait
) -> None:
    user_id, _ = new_user()
    headers = bearer(peers, user_id)
    path = f"/rest-lifecycle/{user_id}"
    async with httpx.AsyncClient(base_url=f"http://{gateway_url}") as client:
        created = await client.post(
            "/api/v1/webhooks", json={"url": receiver.url("/elsewhere")}, headers=headers
        )
        assert created.status_code == 201, created.text
        hook_url = f"/api/v1/webhooks/{created.json()['id']}"

        paused = await client.patch(
            hook_url,
            json={"url": receiver.url(path), "events": ["job.failed"], "enabled": False},
            headers=headers,
        )
        assert paused.status_code == 200, paused.text
        body = paused.json()
        assert (body["url"], body["events"]) == (receiver.url(path), ["job.failed"])
        assert (body["enabled"], body["disabled_reason"]) == (False, "owner")
        assert body["disabled_at"] is not None and "secret" not in body

        missed = await client.get(f"{hook_url}/deliveries", headers=headers)
        assert missed.json()["items"] == []  # nothing happened while it was paused
        pinged = await client.post(f"{hook_url}/ping", headers=headers)
        assert pinged.status_code == 202, pinged.text
        assert (pinged.json()["event_type"], pinged.json()["state"]) == ("webhook.ping", "pending")
        [request] = await wait(lambda: receiver.received(path))
        assert json.loads(request.body)["type"] == "webhook.ping"

        enabled = await client.patch(hook_url, json={"enabled": True}, headers=headers)
        assert enabled.status_code == 200, enabled.text
        assert (enabled.json()["enabled"], enabled.json()["disabled_reason"]) == (True, None)
        listed = await client.get("/api/v1/webhooks", headers=headers)
        assert listed.json()["items"][0]["enabled"] is True

        for invalid in (
            {},
            {"enabled": None},
            {"enabled": "yes"},
            {"url": ""},
            {"events": ["job.nope"]},
            {"secret": "mine"},
        ):
            refused = await client.patch(hook_url, json=invalid, headers=headers)
            assert refused.status_code == 422, (invalid, refused.text)
        stranger = bearer(peers, new_user()[0])
        for response in (
            await client.patch(hook_url, json={"enabled": False}, headers=stranger),
            await client.post(f"{hook_url}/ping", headers=stranger),
        ):
            assert response.status_code == 404, response.text
        assert (await client.patch(hook_url, json={"enabled": False})).status_code == 401


async def read_all(socket) -> tuple[list[dict], int | None]:
    messages = []
    try:
        while True:
            messages.append(json.loads(await asyncio.wait_for(socket.recv(), timeout=10)))
    except ConnectionClosed:
        return messages, socket.close_code


def processing(peers, user_id: str) -> str:
    job_id = str(uuid.uuid4())
    job = detection_pb2.Job(id=job_id, status=detection_pb2.JOB_STATUS_PROCESSING, total=2)
    job.updated_at.GetCurrentTime()
    peers.detection.jobs[job_id] = (user_id, job)
    return job_id


async def test_the_websocket_streams_progress_and_closes_after_completion(
    gateway_url, peers, producer, new_user, events
) -> None:
    user_id, _ = new_user()
    job_id = processing(peers, user_id)
    url = f"ws://{gateway_url}/api/v1/ws/jobs/{job_id}"
    async with connect(url, additional_headers=bearer(peers, user_id)) as socket:
        first = json.loads(await socket.recv())
        assert first["type"] == "job.progress" and first["job_id"] == job_id
        await producer.publish(events.progress(user_id, job_id, 1, total=2))
        await producer.publish(events.finished(user_id, job_id, counts={"cat": 1}))
        messages, code = await read_all(socket)
    assert [m["type"] for m in messages] == ["job.progress", "job.completed"]
    assert messages[1]["class_counts"] == {"cat": 1} and messages[1]["status"] == "completed"
    assert code == 1000


async def test_the_websocket_closes_after_a_cancelled_jobs_final_event(
    gateway_url, peers, producer, new_user, events
) -> None:
    user_id, _ = new_user()
    job_id = processing(peers, user_id)
    url = f"ws://{gateway_url}/api/v1/ws/jobs/{job_id}"
    async with connect(url, additional_headers=bearer(peers, user_id)) as socket:
        assert json.loads(await socket.recv())["type"] == "job.progress"
        await producer.publish(events.cancelled(user_id, job_id, processed=1))
        messages, code = await read_all(socket)
        reason = socket.close_reason
    assert [m["type"] for m in messages] == ["job.cancelled"]
    assert (messages[0]["status"], messages[0]["processed"]) == ("cancelled", 1)
    assert (code, reason) == (1000, "job finished")


async def test_the_token_may_come_as_the_first_message(gateway_url, peers, new_user) -> None:
    user_id, _ = new_user()
    job_id = str(uuid.uuid4())
    done = detection_pb2.Job(id=job_id, status=detection_pb2.JOB_STATUS_COMPLETED, total=1)
    peers.detection.jobs[job_id] = (user_id, done)
    async with connect(f"ws://{gateway_url}/api/v1/ws/jobs/{job_id}") as socket:
        await socket.send(json.dumps({"token": peers.auth.access_token(user_id)}))
        messages, code = await read_all(socket)
    assert [m["type"] for m in messages] == ["job.completed"] and code == 1000


async def test_someone_elses_job_closes_with_4404(gateway_url, peers, new_user) -> None:
    owner, _ = new_user()
    intruder, _ = new_user()
    job_id = processing(peers, owner)
    url = f"ws://{gateway_url}/api/v1/ws/jobs/{job_id}"
    async with connect(url, additional_headers=bearer(peers, intruder)) as socket:
        messages, code = await read_all(socket)
    assert messages == [] and code == 4404


@pytest.mark.parametrize("first_message", ['{"token": "not-a-jwt"}', "hello", '{"tok": 1}'])
async def test_a_bad_or_missing_token_closes_with_4401(gateway_url, first_message: str) -> None:
    url = f"ws://{gateway_url}/api/v1/ws/jobs/{uuid.uuid4()}"
    async with connect(url) as socket:
        await socket.send(first_message)
        messages, code = await read_all(socket)
    assert messages == [] and code == 4401


async def test_a_bad_bearer_header_closes_with_4401(gateway_url) -> None:
    url = f"ws://{gateway_url}/api/v1/ws/jobs/{uuid.uuid4()}"
    async with connect(url, additional_headers={"Authorization": "Bearer nope"}) as socket:
        messages, code = await read_all(socket)
    assert messages == [] and code == 4401


async def test_a_client_that_leaves_ends_the_upstream_subscription(
    gateway_url, peers, new_user, service, wait
) -> None:
    user_id, _ = new_user()
    job_id = processing(peers, user_id)
    channel = f"objectvision:jobs:{job_id}"
    url = f"ws://{gateway_url}/api/v1/ws/jobs/{job_id}"
    async with connect(url, additional_headers=bearer(peers, user_id)) as socket:
        await socket.recv()
        [(_, subscribers)] = await service.runtime.redis.pubsub_numsub(channel)
        assert subscribers == 1

    async def unsubscribed() -> bool:
        [(_, subscribers)] = await service.runtime.redis.pubsub_numsub(channel)
        return subscribers == 0

    await wait(unsubscribed, within=5)
