"""The notification schema's outbox: the events this service announces itself.

Table, staging and relay are the shared ones (objectvision_common.outbox). The one event so
far is `webhook.disabled` (ADR 0046): staged in the commit that disables a failing webhook,
so the owner's notice exists if and only if the webhook was disabled, and a crash between
the two cannot lose it.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from notification_service.database import metadata
from objectvision.v1 import notification_pb2
from objectvision_common.outbox import add_event, outbox_table

WEBHOOK_DISABLED = "webhook.disabled"

OUTBOX = outbox_table(metadata)


async def add_webhook_disabled(
    session: AsyncSession, *, user_id: str, disabled: notification_pb2.WebhookDisabled
) -> None:
    await add_event(
        session,
        OUTBOX,
        notification_pb2.Event(type=WEBHOOK_DISABLED, user_id=user_id, webhook_disabled=disabled),
    )
