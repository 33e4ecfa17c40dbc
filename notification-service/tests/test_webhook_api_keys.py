"""A webhook registered with an API key lives no longer than that key (ADR 0026, amendment).

The webhook records the key (the signed principal's `credential_id` when it is an API key) and
the key's expiry; its owner sees the key in the list. `api_key.revoked` deletes the key's
webhooks and nothing else, once however often it is delivered; a webhook whose key has expired
delivers nothing more and is deleted at its next due delivery. A session's webhook records no
key and is touched by neither.

On the running service with its real consumer group and dispatcher (conftest.py); events come
through a producer's outbox and the relay, as auth-service's do.
"""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text, update

from notification_service.deliveries.models import DEAD, PENDING, deliveries
from notification_service.events.models import processed_events
from notification_service.server import MIGRATIONS_DIR
from notification_service.webhooks.models import webhooks
from notification_service.webhooks.sender import EXPIRED_KEY
from notification_service.webhooks.service import SigningTarget
from objectvision.v1 import common_pb2, notification_pb2
from objectvision_common.db import sync_url, upgrade_to, upgrade_to_head
from objectvision_common.identity import principal_metadata
from objectvision_devstack.databases import fresh_database

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture
def with_key(settings) -> Callable[..., Metadata]:
    """The metadata the gateway attaches for a caller using API key `key_id`, signed as the
    service expects it."""

    def metadata(user_id: str, key_id: str, *, expires_at: datetime | None = None) -> Metadata:
        principal = common_pb2.Principal(
            user_id=user_id, auth_method="api_key", credential_id=key_id, scopes=["webhooks"]
        )
        if expires_at is not None:
            principal.credential_expires_at.FromDatetime(expires_at)
        return principal_metadata(principal, secret=settings.service_token_secret)

    return metadata


def key_revoked(user_id: str, key_id: str) -> notification_pb2.Event:
    """The event as auth-service stages it in the commit that revokes the key."""
    event = notification_pb2.Event(
        type="api_key.revoked",
        user_id=user_id,
        api_key_revoked=notification_pb2.ApiKeyRevoked(key_id=key_id),
    )
    event.occurred_at.FromDatetime(datetime.now(UTC))
    return event


async def register(service, metadata, url: str) -> notification_pb2.Webhook:
    created = await service.stub.CreateWebhook(
        notification_pb2.CreateWebhookRequest(url=url), metadata=metadata
    )
    return created.webhook


async def listed(service, as_user, user_id: str) -> dict[str, str]:
    """The owner's webhooks: id -> the API key that registered it ('' for a session)."""
    answer = await service.stub.ListWebhooks(
        notification_pb2.ListWebhooksRequest(), metadata=as_user(user_id)
    )
    return {hook.id: hook.api_key_id for hook in answer.webhooks}


async def processed(service, event_id: str) -> bool:
    async with service.runtime.sessions() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(processed_events)
            .where(processed_events.c.event_id == uuid.UUID(event_id))
        )
    return bool(found)


async def test_a_webhook_records_the_api_key_that_registered_it_and_a_sessions_records_none(
    service, receiver, new_user, as_user, with_key
) -> None:
    user_id, _ = new_user()
    key_id = str(uuid.uuid4())
    expires_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)

    by_key = await register(
        service, with_key(user_id, key_id, expires_at=expires_at), receiver.url("/k/a")
    )
    by_session = await register(service, as_user(user_id), receiver.url("/k/b"))

    assert by_key.api_key_id == key_id
    assert by_session.api_key_id == ""
    assert await listed(service, as_user, user_id) == {by_key.id: key_id, by_session.id: ""}
    async with service.runtime.sessions() as session:
        stored = {
            str(row.id): (row.api_key_id, row.api_key_expires_at)
            for row in await session.execute(
                select(webhooks.c.id, webhooks.c.api_key_id, webhooks.c.api_key_expires_at).where(
                    webhooks.c.user_id == uuid.UUID(user_id)
                )
            )
        }
    assert stored == {by_key.id: (uuid.UUID(key_id), expires_at), by_session.id: (None, None)}


async def test_revoking_a_key_deletes_its_webhooks_only_and_a_redelivery_deletes_nothing_more(
    service, producer, receiver, new_user, as_user, with_key, wait, events
) -> None:
    user_id, _ = new_user()
    other_user, _ = new_user()
    revoked, kept = str(uuid.uuid4()), str(uuid.uuid4())
    doomed = [
        await register(service, with_key(user_id, revoked), receiver.url(f"/r/{n}"))
        for n in range(2)
    ]
    by_other_key = await register(service, with_key(user_id, kept), receiver.url("/r/kept"))
    by_session = await register(service, as_user(user_id), receiver.url("/r/session"))
    # The key id of another account's event never reaches this account's webhooks.
    strangers = await register(service, with_key(other_user, revoked), receiver.url("/r/other"))
    assert len(await listed(service, as_user, user_id)) == 4

    event_id = await producer.publish(key_revoked(user_id, revoked))
    await wait(lambda: processed(service, event_id))

    remaining = await listed(service, as_user, user_id)
    assert remaining == {by_other_key.id: kept, by_session.id: ""}
    assert not {hook.id for hook in doomed} & remaining.keys()
    assert await listed(service, as_user, other_user) == {strangers.id: revoked}

    # Delivered again (a crash before the acknowledgement), and then as a new event of the
    # same key: neither finds anything more to delete, and neither fails.
    await producer.publish_again(event_id)
    again_id = await producer.publish(key_revoked(user_id, revoked))
    await wait(lambda: processed(service, again_id))
    # The account's events are handled in stream order: once a later one is, both were.
    later_id = await producer.publish(events.address_notice("user.signup_attempted", user_id))
    await wait(lambda: processed(service, later_id))
    assert await listed(service, as_user, user_id) == remaining


async def _repoint(service, metadata, webhook_id: str, url: str) -> None:
    request = notification_pb2.UpdateWebhookRequest(webhook_id=webhook_id, url=url)
    request.update_mask.paths.append("url")
    await service.stub.UpdateWebhook(request, metadata=metadata)


async def test_a_key_that_repoints_a_webhook_or_replaces_its_secret_is_the_one_it_lives_by(
    service, producer, receiver, new_user, as_user, with_key, wait
) -> None:
    """A leaked key could otherwise send a session's webhook, and the owner's job events, to
    its own receiver for good: revoking the key left the redirected webhook, tied to none."""
    user_id, _ = new_user()
    leaked = str(uuid.uuid4())
    redirected = await register(service, as_user(user_id), receiver.url("/mine/events"))
    resigned = await register(service, as_user(user_id), receiver.url("/mine/other"))
    taken_back = await register(service, with_key(user_id, leaked), receiver.url("/by-key"))

    await _repoint(service, with_key(user_id, leaked), redirected.id, receiver.url("/attacker"))
    await service.stub.RotateWebhookSecret(
        notification_pb2.RotateWebhookSecretRequest(webhook_id=resigned.id),
        metadata=with_key(user_id, leaked),
    )
    # The owner's session points the key's webhook at its own receiver: the session's now.
    await _repoint(service, as_user(user_id), taken_back.id, receiver.url("/mine/again"))
    assert await listed(service, as_user, user_id) == {
        redirected.id: leaked,
        resigned.id: leaked,
        taken_back.id: "",
    }

    event_id = await producer.publish(key_revoked(user_id, leaked))
    await wait(lambda: processed(service, event_id))
    assert await listed(service, as_user, user_id) == {taken_back.id: ""}


async def test_a_webhook_whose_key_has_expired_delivers_nothing_and_is_deleted(
    service, producer, receiver, new_user, as_user, with_key, wait, events
) -> None:
    user_id, _ = new_user()
    expiring_path, lasting_path, session_path = (f"/x/{uuid.uuid4().hex}" for _ in range(3))
    in_a_day = datetime.now(UTC) + timedelta(days=1)
    expiring = await register(
        service,
        with_key(user_id, str(uuid.uuid4()), expires_at=in_a_day),
        receiver.url(expiring_path),
    )
    lasting = await register(
        service,
        with_key(user_id, str(uuid.uuid4()), expires_at=in_a_day),
        receiver.url(lasting_path),
    )
    by_session = await register(service, as_user(user_id), receiver.url(session_path))
    # A day later for the first key (no event announces an expiry).
    async with service.runtime.sessions.begin() as session:
        await session.execute(
            update(webhooks)
            .where(webhooks.c.id == uuid.UUID(expiring.id))
            .values(api_key_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    await producer.publish(events.finished(user_id, str(uuid.uuid4())))

    await wait(lambda: receiver.received(lasting_path) and receiver.received(session_path))

    async def expiring_attempt() -> tuple[str, str | None]:
        async with service.runtime.sessions() as session:
            [(state, error)] = (
                await session.execute(
                    select(deliveries.c.state, deliveries.c.last_error).where(
                        deliveries.c.target == receiver.url(expiring_path)
                    )
                )
            ).all()
        return state, error

    async def expiring_gone() -> bool:
        # The sender deletes the webhook, then the attempt's outcome is recorded apart: wait
        # for both.
        gone = expiring.id not in await listed(service, as_user, user_id)
        return gone and (await expiring_attempt())[0] != PENDING

    await wait(expiring_gone)
    assert receiver.received(expiring_path) == []
    assert set(await listed(service, as_user, user_id)) == {lasting.id, by_session.id}
    assert await expiring_attempt() == (DEAD, EXPIRED_KEY)


def test_a_key_has_expired_from_its_expiry_on_and_no_expiry_never_expires() -> None:
    now = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)

    def target(expires_at: datetime | None) -> SigningTarget:
        return SigningTarget(url="https://example.com/", secret="s", api_key_expires_at=expires_at)

    assert target(now).key_expired(now)
    assert target(now - timedelta(seconds=1)).key_expired(now)
    assert not target(now + timedelta(seconds=1)).key_expired(now)
    assert not target(None).key_expired(now)


def test_webhooks_registered_before_the_migration_record_no_key(infrastructure) -> None:
    """Revision 0004 on a database holding a webhook from before it: no key, no expiry, so
    neither a revocation nor an expiry touches it."""
    with fresh_database(infrastructure.database_url) as database_url:
        upgrade_to(
            migrations_dir=MIGRATIONS_DIR,
            database_url=database_url,
            schema="notification",
            revision="0003",
        )
        engine = create_engine(sync_url(database_url))
        hook_id = uuid.uuid4()
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO notification.webhooks (id, user_id, url, events,"
                    " secret_ciphertext) VALUES (:id, :user_id, 'https://example.com/old',"
                    " ARRAY['job.completed'], 'x')"
                ),
                {"id": hook_id, "user_id": uuid.uuid4()},
            )

        upgrade_to_head(
            migrations_dir=MIGRATIONS_DIR, database_url=database_url, schema="notification"
        )

        with engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT api_key_id, api_key_expires_at FROM notification.webhooks"
                    " WHERE id = :id"
                ),
                {"id": hook_id},
            ).one()
        engine.dispose()
    assert tuple(row) == (None, None)
