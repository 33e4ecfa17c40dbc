"""The caller's webhooks. The signing secret is in the creation response only; the
notification service refuses URLs that resolve to internal addresses."""

import uuid
from datetime import datetime
from typing import Literal, Self

from fastapi import APIRouter, Response
from pydantic import Field

from gateway.auth.dependencies import UserUpstream
from gateway.errors import SERVER_ERRORS, error_responses
from gateway.schemas.base import ApiModel, to_datetime
from objectvision.v1 import notification_pb2

MAX_URL_LENGTH = 2048
JobEventType = Literal["job.progress", "job.completed", "job.failed"]

router = APIRouter(
    prefix="/api/v1/webhooks",
    tags=["webhooks"],
    responses=error_responses(401, *SERVER_ERRORS),
)


class WebhookCreateIn(ApiModel):
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="A public http(s) URL; private, loopback and link-local targets are refused.",
    )
    events: list[JobEventType] = Field(
        default_factory=list,
        max_length=3,
        description="Event types to deliver; empty means every job event.",
    )


class WebhookOut(ApiModel):
    id: str
    url: str
    events: list[str]
    created_at: datetime

    @classmethod
    def from_proto(cls, webhook: notification_pb2.Webhook) -> Self:
        return cls(
            id=webhook.id,
            url=webhook.url,
            events=list(webhook.events),
            created_at=to_datetime(webhook.created_at),
        )


class CreatedWebhookOut(WebhookOut):
    secret: str = Field(
        description="Verifies X-ObjectVision-Signature: v1=hex(HMAC-SHA256(secret, "
        '"<X-ObjectVision-Timestamp>.<raw body>")). Shown only once.'
    )

    @classmethod
    def from_created(cls, created: notification_pb2.CreatedWebhook) -> Self:
        webhook = WebhookOut.from_proto(created.webhook)
        return cls(**webhook.model_dump(), secret=created.secret)


class WebhookListOut(ApiModel):
    items: list[WebhookOut]


@router.post(
    "",
    status_code=201,
    summary="Register a webhook; its signing secret is in this response only",
    responses=error_responses(409, 413, 422),
)
async def create_webhook(body: WebhookCreateIn, upstream: UserUpstream) -> CreatedWebhookOut:
    created = await upstream.call(
        upstream.notification.CreateWebhook,
        notification_pb2.CreateWebhookRequest(url=body.url, events=list(body.events)),
    )
    return CreatedWebhookOut.from_created(created)


@router.get("", summary="The caller's webhooks")
async def list_webhooks(upstream: UserUpstream) -> WebhookListOut:
    listed = await upstream.call(
        upstream.notification.ListWebhooks, notification_pb2.ListWebhooksRequest()
    )
    return WebhookListOut(items=[WebhookOut.from_proto(hook) for hook in listed.webhooks])


@router.delete(
    "/{webhook_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a webhook; deliveries not yet made are dropped",
    responses=error_responses(404, 422),
)
async def delete_webhook(webhook_id: uuid.UUID, upstream: UserUpstream) -> Response:
    await upstream.call(
        upstream.notification.DeleteWebhook,
        notification_pb2.DeleteWebhookRequest(webhook_id=str(webhook_id)),
    )
    return Response(status_code=204)
