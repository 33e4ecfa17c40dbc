"""What detection-service does with the events stream: erase deleted accounts (ADR 0025), and
follow suspensions, which stop the account's share links (ADR 0048).

detection-service reads the stream in a consumer group of its own
(DETECTION_EVENTS_CONSUMER_GROUP) through the shared consumer (objectvision_common.events),
which acknowledges an event only once its handling returned: an erasure that fails or dies
half-way is delivered again and carries on. A suspension or restoration is recorded with its
event's time, so a redelivered older one never undoes a newer one. Every other event (its own
job events among them) is acknowledged untouched.
"""

from dataclasses import dataclass
from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detection_service.accounts import service as accounts
from detection_service.images.service import Forget
from detection_service.images.storage import ObjectStorage
from detection_service.sharing import service as sharing
from objectvision.v1 import notification_pb2
from objectvision_common.account_events import ACCOUNT_RESTORED, ACCOUNT_SUSPENDED, USER_DELETED


@dataclass(frozen=True, kw_only=True, eq=False)
class AccountEvents:
    sessions: async_sessionmaker[AsyncSession]
    storage: ObjectStorage
    # Rows per transaction of an erasure (ERASURE_CHUNK_SIZE).
    chunk_size: int
    # The result cache's forgetting of a deleted image's answers; None without a cache.
    forget: Forget | None = None

    async def handle(self, event: notification_pb2.Event) -> None:
        """Erase the account a `user.deleted` event names, record the standing a
        `user.suspended` or `user.restored` one gives; ignore anything else."""
        if not event.user_id:
            return
        if event.type in (ACCOUNT_SUSPENDED, ACCOUNT_RESTORED):
            async with self.sessions.begin() as session:
                await sharing.record_standing(
                    session=session,
                    user_id=event.user_id,
                    suspended=event.type == ACCOUNT_SUSPENDED,
                    changed_at=event.occurred_at.ToDatetime(UTC),
                )
            return
        if event.type != USER_DELETED:
            return
        await accounts.erase_account(
            sessions=self.sessions,
            storage=self.storage,
            user_id=event.user_id,
            deleted_at=event.occurred_at.ToDatetime(UTC),
            chunk_size=self.chunk_size,
            forget=self.forget,
        )
