"""The gRPC face of the service: authenticate, call the domain functions, shape replies."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf import empty_pb2
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notification_service.deliveries import service as deliveries_service
from notification_service.deliveries.models import PENDING
from notification_service.ids import parse_uuid
from notification_service.links import ConsoleLinks
from notification_service.progress.hub import ProgressHub
from notification_service.webhooks import service as webhooks_service
from objectvision.v1 import common_pb2, notification_pb2, notification_pb2_grpc
from objectvision_common.errors import InvalidArgument, PermissionDenied
from objectvision_common.sealing import SecretBox
from objectvision_common.servicer import ServicerContext, caller_principal, timestamp

# Principal.auth_method of a caller that used an API key (common.proto).
API_KEY = "api_key"
# What UpdateWebhook's update_mask may name.
UPDATABLE_WEBHOOK_FIELDS = frozenset({"url", "events", "enabled"})


def _webhook_message(hook: webhooks_service.Webhook) -> notification_pb2.Webhook:
    return notification_pb2.Webhook(
        id=str(hook.id),
        url=hook.url,
        events=hook.events,
        created_at=timestamp(hook.created_at),
        api_key_id=str(hook.api_key_id or ""),
        previous_secret_expires_at=timestamp(hook.previous_secret_expires_at),
        disabled_at=timestamp(hook.disabled_at),
        disabled_reason=hook.disabled_reason or "",
        consecutive_failures=hook.consecutive_failures,
    )


def _api_key(principal: common_pb2.Principal) -> tuple[uuid.UUID | None, datetime | None]:
    """The API key the caller used and when it expires; (None, None) for a session, whose
    credential (an access token) is not what a webhook should live as long as."""
    if principal.auth_method != API_KEY:
        return None, None
    key_id = parse_uuid(principal.credential_id, what="API key id")
    expires_at = (
        principal.credential_expires_at.ToDatetime(UTC)
        if principal.HasField("credential_expires_at")
        else None
    )
    return key_id, expires_at


def _webhook_delivery_message(
    delivery: deliveries_service.WebhookDelivery,
) -> notification_pb2.WebhookDelivery:
    return notification_pb2.WebhookDelivery(
        id=str(delivery.id),
        webhook_id=str(delivery.webhook_id),
        event_id=str(delivery.event_id),
        event_type=delivery.event_type,
        state=delivery.state,
        attempts=delivery.attempts,
        last_attempt_at=timestamp(delivery.last_attempt_at),
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error or "",
        next_attempt_at=timestamp(delivery.next_attempt_at),
        created_at=timestamp(delivery.created_at),
        delivered_at=timestamp(delivery.delivered_at),
        redelivery_of=str(delivery.redelivery_of or ""),
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class NotificationServicer(notification_pb2_grpc.NotificationServiceServicer):
    session_factory: async_sessionmaker[AsyncSession]
    box: SecretBox
    progress: ProgressHub
    service_secret: str
    webhook_allow_private: bool
    webhook_max_per_user: int
    # The dispatcher's wake-up: a redelivery is due now, not at its next poll.
    on_new_deliveries: Callable[[], None]
    # For the bodies of the deliveries made here (pings).
    links: ConsoleLinks

    def _principal(self, context: ServicerContext) -> common_pb2.Principal:
        return caller_principal(context, secret=self.service_secret)

    async def CreateWebhook(  # noqa: N802
        self, request: notification_pb2.CreateWebhookRequest, context: ServicerContext
    ) -> notification_pb2.CreatedWebhook:
        principal = self._principal(context)
        api_key_id, api_key_expires_at = _api_key(principal)
        async with self.session_factory() as session, session.begin():
            hook, secret = await webhooks_service.create_webhook(
                session=session,
                box=self.box,
                user_id=principal.user_id,
                url=request.url,
                events=list(request.events),
                allow_private=self.webhook_allow_private,
                max_per_user=self.webhook_max_per_user,
                api_key_id=api_key_id,
                api_key_expires_at=api_key_expires_at,
            )
        return notification_pb2.CreatedWebhook(webhook=_webhook_message(hook), secret=secret)

    async def ListWebhooks(  # noqa: N802
        self, request: notification_pb2.ListWebhooksRequest, context: ServicerContext
    ) -> notification_pb2.ListWebhooksResponse:
        principal = self._principal(context)
        async with self.session_factory() as session:
            hooks = await webhooks_service.list_webhooks(session=session, user_id=principal.user_id)
        return notification_pb2.ListWebhooksResponse(webhooks=[_webhook_message(h) for h in hooks])

    async def DeleteWebhook(  # noqa: N802
        self, request: notification_pb2.DeleteWebhookRequest, context: ServicerContext
    ) -> empty_pb2.Empty:
        principal = self._principal(context)
        async with self.session_factory() as session, session.begin():
            await webhooks_service.delete_webhook(
                session=session, user_id=principal.user_id, webhook_id=request.webhook_id
            )
        return empty_pb2.Empty()

    async def SubscribeJobProgress(  # noqa: N802
        self,
        request: notification_pb2.SubscribeJobProgressRequest,
        context: ServicerContext,
    ) -> AsyncIterator[notification_pb2.Event]:
        principal = self._principal(context)
        if not request.job_id:
            raise InvalidArgument("job_id is required")
        async for event in self.progress.follow(principal, request.job_id):
            yield event

    async def ListDeliveries(  # noqa: N802
        self, request: notification_pb2.ListDeliveriesRequest, context: ServicerContext
    ) -> notification_pb2.ListDeliveriesResponse:
        principal = self._principal(context)
        if not principal.is_admin:
            raise PermissionDenied("listing deliveries is for administrators")
        async with self.session_factory() as session:
            rows = await deliveries_service.list_deliveries(
                session=session, state=request.state, limit=request.limit
            )
        return notification_pb2.ListDeliveriesResponse(
            deliveries=[
                notification_pb2.Delivery(
                    id=str(row.id),
                    event_id=str(row.event_id),
                    channel=row.channel,
                    target=row.target,
                    state=row.state,
                    attempts=row.attempts,
                    last_error=row.last_error or "",
                    next_attempt_at=timestamp(
                        row.next_attempt_at if row.state == PENDING else None
                    ),
                )
                for row in rows
            ]
        )

    async def ListWebhookDeliveries(  # noqa: N802
        self, request: notification_pb2.ListWebhookDeliveriesRequest, context: ServicerContext
    ) -> notification_pb2.ListWebhookDeliveriesResponse:
        principal = self._principal(context)
        async with self.session_factory() as session:
            hook = await webhooks_service.owned_webhook(
                session=session, user_id=principal.user_id, webhook_id=request.webhook_id
            )
            page = await deliveries_service.list_webhook_deliveries(
                session=session,
                webhook_id=hook.id,
                state=request.state,
                limit=request.page.limit,
                offset=request.page.offset,
            )
        return notification_pb2.ListWebhookDeliveriesResponse(
            deliveries=[_webhook_delivery_message(d) for d in page.deliveries],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )

    async def RotateWebhookSecret(  # noqa: N802
        self, request: notification_pb2.RotateWebhookSecretRequest, context: ServicerContext
    ) -> notification_pb2.CreatedWebhook:
        principal = self._principal(context)
        api_key_id, api_key_expires_at = _api_key(principal)
        async with self.session_factory() as session, session.begin():
            hook, secret = await webhooks_service.rotate_secret(
                session=session,
                box=self.box,
                user_id=principal.user_id,
                webhook_id=request.webhook_id,
                keep_previous=timedelta(seconds=request.keep_previous_seconds),
                api_key_id=api_key_id,
                api_key_expires_at=api_key_expires_at,
            )
        return notification_pb2.CreatedWebhook(webhook=_webhook_message(hook), secret=secret)

    async def _queue_for_webhook(
        self,
        context: ServicerContext,
        webhook_id: str,
        queue: Callable[
            [AsyncSession, webhooks_service.Webhook], Awaitable[deliveries_service.WebhookDelivery]
        ],
    ) -> notification_pb2.WebhookDelivery:
        """A delivery `queue` adds to the caller's webhook, held against deletion meanwhile;
        the dispatcher is woken, so it goes now rather than at the next poll."""
        principal = self._principal(context)
        async with self.session_factory() as session, session.begin():
            hook = await webhooks_service.owned_webhook(
                session=session, user_id=principal.user_id, webhook_id=webhook_id, hold=True
            )
            delivery = await queue(session, hook)
        self.on_new_deliveries()
        return _webhook_delivery_message(delivery)

    async def RedeliverWebhookDelivery(  # noqa: N802
        self, request: notification_pb2.RedeliverWebhookDeliveryRequest, context: ServicerContext
    ) -> notification_pb2.WebhookDelivery:
        return await self._queue_for_webhook(
            context,
            request.webhook_id,
            lambda session, hook: deliveries_service.redeliver_webhook_delivery(
                session=session, webhook=hook, delivery_id=request.delivery_id
            ),
        )

    async def UpdateWebhook(  # noqa: N802
        self, request: notification_pb2.UpdateWebhookRequest, context: ServicerContext
    ) -> notification_pb2.Webhook:
        principal = self._principal(context)
        paths = set(request.update_mask.paths)
        unknown = sorted(paths - UPDATABLE_WEBHOOK_FIELDS)
        if unknown:
            raise InvalidArgument(
                f"update_mask names {unknown}; a webhook's {sorted(UPDATABLE_WEBHOOK_FIELDS)}"
                " can be updated"
            )
        api_key_id, api_key_expires_at = _api_key(principal)
        async with self.session_factory() as session, session.begin():
            hook = await webhooks_service.update_webhook(
                session=session,
                user_id=principal.user_id,
                webhook_id=request.webhook_id,
                allow_private=self.webhook_allow_private,
                url=request.url if "url" in paths else None,
                events=list(request.events) if "events" in paths else None,
                enabled=request.enabled if "enabled" in paths else None,
                api_key_id=api_key_id,
                api_key_expires_at=api_key_expires_at,
            )
        return _webhook_message(hook)

    async def PingWebhook(  # noqa: N802
        self, request: notification_pb2.PingWebhookRequest, context: ServicerContext
    ) -> notification_pb2.WebhookDelivery:
        return await self._queue_for_webhook(
            context,
            request.webhook_id,
            lambda session, hook: deliveries_service.queue_ping(
                session=session, webhook=hook, links=self.links
            ),
        )
