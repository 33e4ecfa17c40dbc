"""What detection-service does with the events stream: erase deleted accounts (ADR 0025).

detection-service reads the stream in a consumer group of its own
(DETECTION_EVENTS_CONSUMER_GROUP) through the shared consumer (objectvision_common.events),
which acknowledges an event only once its handling returned: an erasure that fails or dies
half-way is delivered again and carries on. Every other event (its own job events among
them) is acknowledged untouched.
"""

from dataclasses import dataclass
from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.accounts import service as accounts
from detection_service.images.service import Forget
from detection_service.images.storage import ObjectStorage
from objectvision.v1 import notification_pb2

USER_DELETED = "user.deleted"


@dataclass(frozen=True, kw_only=True, eq=False)
class AccountEvents:
    sessions: async_sessionmaker[AsyncSession]
    storage: ObjectStorage
    # Rows per transaction of an erasure (ERASURE_CHUNK_SIZE).
    chunk_size: int
    # The result cache's forgetting of a deleted image's answers; None without a cache.
    forget: Forget | None = None

    async def handle(self, event: notification_pb2.Event) -> None:
        """Erase the account a `user.deleted` event names; ignore anything else."""
        if event.type != USER_DELETED or not event.user_id:
            return
        await accounts.erase_account(
            sessions=self.sessions,
            storage=self.storage,
            user_id=event.user_id,
            deleted_at=event.occurred_at.ToDatetime(UTC),
            chunk_size=self.chunk_size,
            forget=self.forget,
        )
