"""ListDeliveries is for administrators; the schema matches its migrations."""

import uuid

import grpc
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from notification_service.database import SCHEMA, metadata
from objectvision.v1 import notification_pb2
from objectvision_common.db import sync_url


async def test_only_admins_list_deliveries(
    service, producer, new_user, as_user, events, wait
) -> None:
    user_id, email = new_user()
    await producer.publish(events.registered(user_id, email, "Listed"))
    request = notification_pb2.ListDeliveriesRequest(state="delivered", limit=500)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await service.stub.ListDeliveries(request, metadata=as_user(user_id))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    async def listed():
        reply = await service.stub.ListDeliveries(
            request, metadata=as_user(str(uuid.uuid4()), admin=True)
        )
        return [d for d in reply.deliveries if d.target == email]

    [delivery] = await wait(listed)
    assert delivery.channel == "email" and delivery.state == "delivered"
    assert delivery.attempts == 1 and not delivery.HasField("next_attempt_at")

    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await service.stub.ListDeliveries(
            notification_pb2.ListDeliveriesRequest(state="lost"),
            metadata=as_user(user_id, admin=True),
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_migrations_create_exactly_the_declared_tables(migrated) -> None:
    engine = create_engine(sync_url(migrated.database_url))
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, parent: (
                    name == SCHEMA if type_ == "schema" else name != "alembic_version"
                ),
            },
        )
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == [], "\n".join(map(str, differences))
