"""The caller's webhooks. The signing secret is in the creation response only; the
notification service refuses URLs that resolve to internal addresses."""

import uuid

from fastapi import Response

from gateway.auth.dependencies import UserUpstream, signed_in_router
from gateway.errors import error_responses
from gateway.schemas.webhooks import (
    CreatedWebhookOut,
    WebhookCreateIn,
    WebhookListOut,
    WebhookOut,
)
from objectvision.v1 import notification_pb2

router = signed_in_router("/api/v1/webhooks", "webhooks")


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
