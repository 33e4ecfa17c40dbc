"""Share links (ADR 0048): an owner shares one stored detection, and whoever holds the link's
token sees its objects and image, with no account, until the link expires, its owner revokes
it, deletes the detection or has the account suspended.

Against real PostgreSQL, Redis, Triton and the service's storage directory. The shared reads
are called with no principal at all, as the gateway calls them for an anonymous visitor.
"""

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import cv2
import grpc
import numpy as np
import pytest
import sqlalchemy as sa

from detection_service.accounts.models import ERASED_ACCOUNTS
from detection_service.sharing import service as sharing
from detection_service.sharing.models import share_links
from objectvision.v1 import detection_pb2, notification_pb2
from objectvision_common.db import session_factory
from objectvision_common.erasure import close_account
from objectvision_common.limits import (
    DEFAULT_SHARE_LINK_DAYS,
    MAX_ACTIVE_SHARE_LINKS,
    MAX_SHARE_LINK_DAYS,
)

from .conftest import announce_event
from .test_redaction import finer_than_blocks


async def store(harness, user, data: bytes, name: str = "bus.jpg") -> str:
    reply = await harness.stub.Detect(
        detection_pb2.DetectRequest(
            images=[detection_pb2.ImageInput(data=data, filename=name)],
            store=True,
            metadata={"camera": "private-gate"},
        ),
        metadata=harness.metadata(user),
        timeout=30,
    )
    return reply.results[0].detection_id


async def share(harness, user, detection_id: str, days: int = 0) -> detection_pb2.CreatedShareLink:
    return await harness.stub.CreateShareLink(
        detection_pb2.CreateShareLinkRequest(detection_id=detection_id, expires_in_days=days),
        metadata=harness.metadata(user),
        timeout=30,
    )


async def links_of(harness, user, detection_id: str = "") -> list[detection_pb2.ShareLink]:
    reply = await harness.stub.ListShareLinks(
        detection_pb2.ListShareLinksRequest(detection_id=detection_id),
        metadata=harness.metadata(user),
        timeout=30,
    )
    return list(reply.links)


async def shown(harness, token: str) -> detection_pb2.SharedDetection:
    """What an anonymous visitor with the token reads: no principal in the call."""
    reply = await harness.stub.GetShared(detection_pb2.GetSharedRequest(token=token), timeout=30)
    assert reply.WhichOneof("shown") == "detection"
    return reply.detection


async def shown_image(harness, token: str, *, annotated: bool) -> bytes:
    chunks = harness.stub.GetSharedImage(
        detection_pb2.GetSharedImageRequest(token=token, annotated=annotated), timeout=60
    )
    return b"".join([chunk.data async for chunk in chunks])


async def refusal(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value.code(), dict(refused.value.trailing_metadata())["error-code"]


def account_event(kind: str, user: str, at: datetime) -> notification_pb2.Event:
    """`user.suspended` or `user.restored` as auth-service stages it."""
    event = notification_pb2.Event(
        id=str(uuid.uuid4()),
        type=kind,
        user_id=user,
        account_status_changed=notification_pb2.AccountStatusChanged(
            email="someone@example.com", name="Someone"
        ),
    )
    event.occurred_at.FromDatetime(at)
    return event


async def test_a_link_shows_the_detection_and_its_image_to_whoever_holds_the_token(
    detection, user, bus_jpg
):
    detection_id = await store(detection, user, bus_jpg)
    created = await share(detection, user, detection_id)
    owned = await detection.stub.GetDetection(
        detection_pb2.GetDetectionRequest(detection_id=detection_id),
        metadata=detection.metadata(user),
        timeout=30,
    )

    seen = await shown(detection, created.token)

    assert created.token.startswith("ovs_")
    assert created.link.detection_id == detection_id and created.link.active
    assert (seen.width, seen.height) == (owned.result.width, owned.result.height)
    assert [(o.class_name, o.confidence, o.box) for o in seen.objects] == [
        (o.class_name, o.confidence, o.box) for o in owned.result.objects
    ]
    assert "bus" in {o.class_name for o in seen.objects}
    assert seen.model == owned.result.model
    assert seen.expires_at == created.link.expires_at
    # Only the image and its objects: never the owner's file name, metadata or ids.
    assert set(seen.DESCRIPTOR.fields_by_name) == {
        "width",
        "height",
        "objects",
        "model",
        "model_version",
        "detected_at",
        "expires_at",
    }

    original = await shown_image(detection, created.token, annotated=False)
    annotated = await shown_image(detection, created.token, annotated=True)
    assert original == bus_jpg
    drawn = cv2.imdecode(np.frombuffer(annotated, np.uint8), cv2.IMREAD_COLOR)
    assert drawn.shape[:2] == (owned.result.height, owned.result.width)
    assert annotated != original

    (listed,) = await links_of(detection, user, detection_id)
    # Reading the detection counts a view; fetching its image does not count another.
    assert listed.views == 1 and listed.last_viewed_at.seconds > 0
    assert listed.token_prefix == created.token[:12]


async def test_the_token_is_kept_only_as_its_hash(detection, user, bus_jpg):
    created = await share(detection, user, await store(detection, user, bus_jpg))

    async with detection.service.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(share_links).where(share_links.c.id == uuid.UUID(created.link.id))
            )
        ).one()

    assert row.token_hash == hashlib.sha256(created.token.encode()).digest()
    assert created.token not in {str(value) for value in row}


async def test_a_link_lasts_the_days_asked_by_default_a_week_at_most_a_month(
    detection, user, bus_jpg
):
    detection_id = await store(detection, user, bus_jpg)

    default = (await share(detection, user, detection_id)).link
    longest = (await share(detection, user, detection_id, days=MAX_SHARE_LINK_DAYS)).link
    code, error = await refusal(share(detection, user, detection_id, days=MAX_SHARE_LINK_DAYS + 1))

    def days(link):
        return (link.expires_at.ToDatetime() - link.created_at.ToDatetime()) / timedelta(days=1)

    assert days(default) == DEFAULT_SHARE_LINK_DAYS
    assert days(longest) == MAX_SHARE_LINK_DAYS
    assert (code, error) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument")


async def test_only_the_owner_shares_lists_and_revokes(detection, bus_jpg):
    owner, stranger = f"user-{uuid.uuid4()}", f"user-{uuid.uuid4()}"
    detection_id = await store(detection, owner, bus_jpg)
    created = await share(detection, owner, detection_id)

    assert await refusal(share(detection, stranger, detection_id)) == (
        grpc.StatusCode.NOT_FOUND,
        "not_found",
    )
    assert await links_of(detection, stranger) == []
    assert await refusal(
        detection.stub.RevokeShareLink(
            detection_pb2.RevokeShareLinkRequest(share_link_id=created.link.id),
            metadata=detection.metadata(stranger),
            timeout=30,
        )
    ) == (grpc.StatusCode.NOT_FOUND, "not_found")
    assert (await shown(detection, created.token)).width > 0


async def test_a_revoked_link_shows_nothing_and_says_so(detection, user, bus_jpg):
    created = await share(detection, user, await store(detection, user, bus_jpg))

    async def revoke():
        return await detection.stub.RevokeShareLink(
            detection_pb2.RevokeShareLinkRequest(share_link_id=created.link.id),
            metadata=detection.metadata(user),
            timeout=30,
        )

    revoked = await revoke()
    again = await revoke()

    assert not revoked.active and revoked.revoked_at.seconds > 0
    assert again.revoked_at == revoked.revoked_at
    assert await refusal(shown(detection, created.token)) == (
        grpc.StatusCode.NOT_FOUND,
        "share_link_revoked",
    )
    assert await refusal(shown_image(detection, created.token, annotated=True)) == (
        grpc.StatusCode.NOT_FOUND,
        "share_link_revoked",
    )


async def test_an_expired_link_shows_nothing(detection, user, bus_jpg):
    detection_id = uuid.UUID(await store(detection, user, bus_jpg))
    sessions = session_factory(detection.service.engine)
    async with sessions.begin() as session:
        created = await sharing.create_link(
            session=session,
            user_id=user,
            detection_id=detection_id,
            days=1,
            now=datetime.now(UTC) - timedelta(days=1, seconds=1),
        )

    assert await refusal(shown(detection, created.token)) == (
        grpc.StatusCode.NOT_FOUND,
        "share_link_expired",
    )
    (listed,) = await links_of(detection, user, str(detection_id))
    assert not listed.active and not listed.HasField("revoked_at")


async def test_unknown_and_malformed_tokens_are_not_found(detection, user, bus_jpg):
    created = await share(detection, user, await store(detection, user, bus_jpg))
    unknown = created.token[:-4] + ("AAAA" if not created.token.endswith("AAAA") else "BBBB")

    for token in (unknown, "", "ovs_", created.token + "x", "not a token"):
        assert await refusal(shown(detection, token)) == (
            grpc.StatusCode.NOT_FOUND,
            "share_link_not_found",
        )


async def test_a_detection_has_at_most_so_many_active_links(detection, user, bus_jpg):
    detection_id = await store(detection, user, bus_jpg)
    created = [await share(detection, user, detection_id) for _ in range(MAX_ACTIVE_SHARE_LINKS)]

    assert await refusal(share(detection, user, detection_id)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "too_many_share_links",
    )
    await detection.stub.RevokeShareLink(
        detection_pb2.RevokeShareLinkRequest(share_link_id=created[0].link.id),
        metadata=detection.metadata(user),
        timeout=30,
    )
    assert (await share(detection, user, detection_id)).link.active


async def test_deleting_the_detection_ends_its_links(detection, user, bus_jpg):
    detection_id = await store(detection, user, bus_jpg)
    created = await share(detection, user, detection_id)

    await detection.stub.DeleteDetection(
        detection_pb2.DeleteDetectionRequest(detection_id=detection_id),
        metadata=detection.metadata(user),
        timeout=30,
    )

    assert await refusal(shown(detection, created.token)) == (
        grpc.StatusCode.NOT_FOUND,
        "share_link_not_found",
    )
    assert await links_of(detection, user) == []


async def test_a_suspended_accounts_links_show_nothing_until_it_is_restored(
    detection, user, bus_jpg
):
    created = await share(detection, user, await store(detection, user, bus_jpg))
    suspended_at = datetime.now(UTC)

    await announce_event(detection, account_event("user.suspended", user, suspended_at))
    assert await refusal(shown(detection, created.token)) == (
        grpc.StatusCode.NOT_FOUND,
        "share_link_unavailable",
    )
    (listed,) = await links_of(detection, user)
    assert not listed.active

    await announce_event(
        detection, account_event("user.restored", user, suspended_at + timedelta(seconds=1))
    )
    assert (await shown(detection, created.token)).width > 0

    # The suspension delivered again, late: older than the restoration, it changes nothing.
    await announce_event(detection, account_event("user.suspended", user, suspended_at))
    assert (await shown(detection, created.token)).width > 0


async def test_the_owners_calls_need_a_signed_principal(detection):
    assert await refusal(
        detection.stub.ListShareLinks(detection_pb2.ListShareLinksRequest(), timeout=30)
    ) == (grpc.StatusCode.UNAUTHENTICATED, "unauthenticated")
    forged = (("x-principal", "1.x"), ("x-principal-signature", "0" * 64))
    assert await refusal(
        detection.stub.CreateShareLink(
            detection_pb2.CreateShareLinkRequest(detection_id=str(uuid.uuid4())),
            metadata=forged,
            timeout=30,
        )
    ) == (grpc.StatusCode.UNAUTHENTICATED, "unauthenticated")


async def test_a_link_can_show_its_image_with_a_class_pixelated_and_never_the_original(
    detection, user, bus_jpg
):
    detection_id = await store(detection, user, bus_jpg)
    created = await detection.stub.CreateShareLink(
        detection_pb2.CreateShareLinkRequest(detection_id=detection_id, redact=["Person"]),
        metadata=detection.metadata(user),
        timeout=30,
    )
    people = [
        o.box for o in (await shown(detection, created.token)).objects if o.class_name == "person"
    ]

    as_uploaded = await shown_image(detection, created.token, annotated=False)
    annotated = await shown_image(detection, created.token, annotated=True)

    assert list(created.link.redact) == ["person"]
    assert as_uploaded != bus_jpg
    owners_chunks = detection.stub.GetAnnotatedImage(
        detection_pb2.GetAnnotatedImageRequest(detection_id=detection_id, annotated=True),
        metadata=detection.metadata(user),
        timeout=60,
    )
    owners_annotated = b"".join([chunk.data async for chunk in owners_chunks])

    def decoded(data: bytes) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)

    for box in people:
        # As uploaded, the people are blocks; annotated, blocks under the boxes and labels.
        assert finer_than_blocks(decoded(as_uploaded), box) < (
            finer_than_blocks(decoded(bus_jpg), box) / 5
        )
        # (13 to 21 against 33 to 40 for the owner's annotated image of bus.jpg.)
        assert finer_than_blocks(decoded(annotated), box) < (
            finer_than_blocks(decoded(owners_annotated), box) / 1.5
        )
    (listed,) = await links_of(detection, user, detection_id)
    assert list(listed.redact) == ["person"]


async def test_a_deleted_accounts_links_show_nothing_from_the_first_step_of_its_erasure(
    detection, user, bus_jpg
):
    """The erasure records the account before it deletes anything (ADR 0025): from then on its
    links show nothing, though its detections are still being deleted."""
    created = await share(detection, user, await store(detection, user, bus_jpg))
    sessions = session_factory(detection.service.engine)

    async with sessions.begin() as session:
        await close_account(session, ERASED_ACCOUNTS, user, deleted_at=datetime.now(UTC))

    assert await refusal(shown(detection, created.token)) == (
        grpc.StatusCode.NOT_FOUND,
        "share_link_unavailable",
    )
