"""Share links through the public REST API, on the shared stack (ADR 0048, ADR 0052).

An owner shares one stored detection or completed video job; anyone holding the link's token
reads what it shows, and its image or annotated video, with no account, until the owner revokes
the link. The token travels in a header and in the console URL's fragment, so it never reaches
a log.
"""

import os
import uuid
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from objectvision_devstack.answers import api_error
from objectvision_devstack.api_users import Account, fresh_network, signed_in
from objectvision_devstack.stack import Stack

from .conftest import PANNED_FRAMES, finished_video_job

SHARE_LINKS = "/api/v1/share-links"
SHARED = "/api/v1/shared"
BUS = (
    Path(os.environ.get("OBJECTVISION_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    / "images"
    / "bus.jpg"
)


async def _owner(client: httpx.AsyncClient) -> Account:
    return await signed_in(
        client, prefix="share", name="Sharer", network=fresh_network(), read_back=True
    )


async def _stored(client: httpx.AsyncClient, owner: Account, name: str = "gate-7.jpg") -> str:
    detected = await client.post(
        "/api/v1/detect/image",
        files={"file": (name, BUS.read_bytes(), "image/jpeg")},
        data={"metadata": '{"site": "private-yard"}'},
        headers=owner.headers,
    )
    assert detected.status_code == 200, detected.text
    return str(detected.json()["detection_id"])


async def _share(
    client: httpx.AsyncClient, owner: Account, detection_id: str, **body: Any
) -> dict[str, Any]:
    created = await client.post(
        SHARE_LINKS, json={"detection_id": detection_id, **body}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


def _holding(token: str) -> dict[str, str]:
    """A visitor's headers: the token and nothing else (no account, no API key)."""
    return {"X-Share-Token": token}


async def test_whoever_holds_the_link_reads_the_detection_and_its_image_without_an_account(
    stack: Stack, gateway_client: httpx.AsyncClient
) -> None:
    owner = await _owner(gateway_client)
    detection_id = await _stored(gateway_client, owner)
    created = await _share(gateway_client, owner, detection_id, expires_in_days=3)
    stored = (
        await gateway_client.get(f"/api/v1/detect/{detection_id}", headers=owner.headers)
    ).json()

    assert created["detection_id"] == detection_id and created["active"] is True
    assert created["url"] == f"{stack.gateway_url}/#/shared?token={created['token']}"

    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as visitor:
        shown = await visitor.get(SHARED, headers=_holding(created["token"]))
        assert shown.status_code == 200, shown.text
        body = shown.json()
        assert body["kind"] == "detection"
        assert body["image"] == stored["image"]
        assert body["detections"] == stored["detections"]
        assert body["counts"] == {"person": 4, "bus": 1}
        assert body["expires_at"] == created["expires_at"]
        # The owner's file name, metadata and ids stay theirs.
        assert not {"filename", "metadata", "detection_id", "job_id"} & set(body)
        assert shown.headers["cache-control"] == "private, no-store"
        assert shown.headers["x-robots-tag"] == "noindex, nofollow"

        drawn = await visitor.get(f"{SHARED}/image", headers=_holding(created["token"]))
        assert drawn.status_code == 200 and drawn.headers["content-type"] == "image/jpeg"
        picture = cv2.imdecode(np.frombuffer(drawn.content, np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape[:2] == (stored["image"]["height"], stored["image"]["width"])
        original = await visitor.get(
            f"{SHARED}/image", params={"annotated": "false"}, headers=_holding(created["token"])
        )
        assert original.content == BUS.read_bytes()

    listed = await gateway_client.get(
        SHARE_LINKS, params={"detection_id": detection_id}, headers=owner.headers
    )
    assert listed.status_code == 200, listed.text
    (link,) = listed.json()["items"]
    assert link["views"] == 1 and link["token_prefix"] == created["token"][:12]
    assert "token" not in link and "url" not in link

    for log in ("gateway.log", "detection.log"):
        assert created["token"] not in (stack.logs_dir / log).read_text(errors="replace")


async def test_a_revoked_link_is_404_with_its_reason(gateway_client: httpx.AsyncClient) -> None:
    owner = await _owner(gateway_client)
    created = await _share(gateway_client, owner, await _stored(gateway_client, owner))

    revoked = await gateway_client.delete(f"{SHARE_LINKS}/{created['id']}", headers=owner.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["active"] is False and revoked.json()["revoked_at"]

    for path in (SHARED, f"{SHARED}/image"):
        answer = await gateway_client.get(path, headers=_holding(created["token"]))
        assert "revoked" in api_error(answer, 404, "share_link_revoked")["message"]


async def test_links_are_the_owners_alone_and_bad_requests_are_refused(
    gateway_client: httpx.AsyncClient,
) -> None:
    owner, stranger = await _owner(gateway_client), await _owner(gateway_client)
    detection_id = await _stored(gateway_client, owner)
    created = await _share(gateway_client, owner, detection_id)

    theirs = await gateway_client.post(
        SHARE_LINKS, json={"detection_id": detection_id}, headers=stranger.headers
    )
    api_error(theirs, 404, "not_found")
    revoke = await gateway_client.delete(f"{SHARE_LINKS}/{created['id']}", headers=stranger.headers)
    api_error(revoke, 404, "not_found")
    assert (await gateway_client.get(SHARE_LINKS, headers=stranger.headers)).json()["total"] == 0

    for body in (
        {"detection_id": detection_id, "expires_in_days": 31},
        {"detection_id": detection_id, "expires_in_days": 0},
        {"detection_id": "not-an-id"},
    ):
        refused = await gateway_client.post(SHARE_LINKS, json=body, headers=owner.headers)
        api_error(refused, 422, "validation_error")
    anonymous = await gateway_client.post(SHARE_LINKS, json={"detection_id": detection_id})
    api_error(anonymous, 401, "unauthenticated")

    no_token = await gateway_client.get(SHARED)
    api_error(no_token, 422, "validation_error")
    unknown = await gateway_client.get(SHARED, headers=_holding(f"ovs_{uuid.uuid4().hex}"))
    api_error(unknown, 404, "share_link_not_found")


async def test_an_api_key_shares_only_with_the_share_scope(
    gateway_client: httpx.AsyncClient,
) -> None:
    owner = await _owner(gateway_client)
    detection_id = await _stored(gateway_client, owner)

    async def key(*scopes: str) -> dict[str, str]:
        made = await gateway_client.post(
            "/api/v1/users/me/api-keys",
            json={"name": f"k-{uuid.uuid4().hex[:6]}", "scopes": list(scopes)},
            headers=owner.headers,
        )
        assert made.status_code == 201, made.text
        return {"X-API-Key": made.json()["secret"]}

    reader = await key("results:read", "results:write")
    sharer = await key("results:share")

    refused = await gateway_client.post(
        SHARE_LINKS, json={"detection_id": detection_id}, headers=reader
    )
    api_error(refused, 403, "insufficient_scope")
    shared = await gateway_client.post(
        SHARE_LINKS, json={"detection_id": detection_id}, headers=sharer
    )
    assert shared.status_code == 201, shared.text


async def test_people_can_be_pixelated_in_the_owners_image_and_in_a_shared_one(
    gateway_client: httpx.AsyncClient,
) -> None:
    owner = await _owner(gateway_client)
    detection_id = await _stored(gateway_client, owner)
    path = f"/api/v1/detect/{detection_id}/image"

    redacted = await gateway_client.get(
        path, params={"annotated": "false", "redact": "person"}, headers=owner.headers
    )
    assert redacted.status_code == 200, redacted.text
    assert redacted.headers["content-type"] == "image/jpeg"
    assert redacted.content != BUS.read_bytes()
    unknown = await gateway_client.get(path, params={"redact": "unicorn"}, headers=owner.headers)
    assert "unicorn" in api_error(unknown, 422, "invalid_argument")["message"]

    created = await _share(gateway_client, owner, detection_id, redact=["person"])
    assert created["redact"] == ["person"]
    async with httpx.AsyncClient(base_url=gateway_client.base_url, timeout=60) as visitor:
        shared = await visitor.get(
            f"{SHARED}/image", params={"annotated": "false"}, headers=_holding(created["token"])
        )
    assert shared.status_code == 200 and shared.headers["content-type"] == "image/jpeg"
    # The link never gives the upload itself; it gives what the owner's redacted view shows.
    assert shared.content != BUS.read_bytes()
    theirs = cv2.imdecode(np.frombuffer(redacted.content, np.uint8), cv2.IMREAD_COLOR)
    shown = cv2.imdecode(np.frombuffer(shared.content, np.uint8), cv2.IMREAD_COLOR)
    assert np.abs(theirs.astype(int) - shown.astype(int)).max() <= 1


async def test_a_video_jobs_link_shows_what_it_counted_and_streams_its_annotated_video(
    stack: Stack, gateway_client: httpx.AsyncClient, panned_bus: bytes
) -> None:
    owner = await _owner(gateway_client)
    job, _ = await finished_video_job(gateway_client, owner, panned_bus, frames=PANNED_FRAMES)
    created = await gateway_client.post(
        SHARE_LINKS, json={"job_id": job["job_id"]}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    link = created.json()
    owners_video = await gateway_client.get(job["video"]["annotated_url"], headers=owner.headers)

    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as visitor:
        shown = await visitor.get(SHARED, headers=_holding(link["token"]))
        video = await visitor.get(f"{SHARED}/video", headers=_holding(link["token"]))
        not_an_image = await visitor.get(f"{SHARED}/image", headers=_holding(link["token"]))

    assert (link["job_id"], link["detection_id"]) == (job["job_id"], None)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["kind"] == "video" and body["counts"] == job["class_counts"]
    owners_facts = {
        key: value
        for key, value in job["video"].items()
        if key not in {"filename", "size_bytes", "annotated_url", "frames_url"}
    }
    assert body["video"] == owners_facts
    assert not {"filename", "metadata", "job_id", "frames_url"} & (set(body) | set(body["video"]))
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content == owners_video.content
    assert video.headers["cache-control"] == "private, no-store"
    assert api_error(not_an_image, 409, "share_link_shows_video")

    both = await gateway_client.post(
        SHARE_LINKS,
        json={"job_id": job["job_id"], "detection_id": job["job_id"]},
        headers=owner.headers,
    )
    assert "one detection or one video job" in api_error(both, 422, "invalid_argument")["message"]
