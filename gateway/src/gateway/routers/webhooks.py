"""The caller's webhooks and their deliveries. The signing secret is in the creation response
only; the notification service refuses URLs that resolve to internal addresses, and sends a
redelivery through the same checks and signing as any delivery. An API key needs the
`webhooks` scope for every route here."""

import uuid
from typing import Annotated

from fastapi import Query, Response

from gateway.auth.dependencies import WebhooksUpstream, signed_in_router
from gateway.dependencies import PageLimit, PageOffset
from gateway.errors import error_responses
from gateway.schemas.webhooks import (
    CreatedWebhookOut,
    DeliveryState,
    SecretRotationIn,
    WebhookCreateIn,
    WebhookDeliveryListOut,
    WebhookDeliveryOut,
    WebhookListOut,
    WebhookOut,
    WebhookUpdateIn,
)
from objectvision.v1 import common_pb2, notification_pb2
from objectvision_common.limits import DEFAULT_PAGE_LIMIT

router = signed_in_router("/api/v1/webhooks", "webhooks")


@router.post(
    "",
    status_code=201,
    summary="Register a webhook; its signing secret is in this response only",
    responses=error_responses(409, 413, 422),
)
async def create_webhook(body: WebhookCreateIn, upstream: WebhooksUpstream) -> CreatedWebhookOut:
    created = await upstream.call(
        upstream.notification.CreateWebhook,
        notification_pb2.CreateWebhookRequest(url=body.url, events=list(body.events)),
    )
    return CreatedWebhookOut.from_created(created)


@router.get("", summary="The caller's webhooks")
async def list_webhooks(upstream: WebhooksUpstream) -> WebhookListOut:
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
async def delete_webhook(webhook_id: uuid.UUID, upstream: WebhooksUpstream) -> Response:
    await upstream.call(
        upstream.notification.DeleteWebhook,
        notification_pb2.DeleteWebhookRequest(webhook_id=str(webhook_id)),
    )
    return Response(status_code=204)


@router.patch(
    "/{webhook_id}",
    summary="Change a webhook's URL or event types, or disable and enable it (ADR 0046)",
    responses=error_responses(404, 409, 413, 422),
)
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdateIn, upstream: WebhooksUpstream
) -> WebhookOut:
    """Only the fields given change. A webhook the service disabled because its deliveries
    kept failing is enabled again here, once its receiver works (try it with `/ping`); then
    redeliver what it missed. 409 when another of your webhooks has the URL."""
    updated = await upstream.call(
        upstream.notification.UpdateWebhook, body.to_proto(str(webhook_id))
    )
    return WebhookOut.from_proto(updated)


@router.post(
    "/{webhook_id}/ping",
    status_code=202,
    summary="Send the webhook a signed test event (webhook.ping) now, enabled or not",
    responses=error_responses(404, 422),
)
async def ping_webhook(webhook_id: uuid.UUID, upstream: WebhooksUpstream) -> WebhookDeliveryOut:
    """The delivery, pending; follow it in the webhook's deliveries. The receiver gets a body
    of type `webhook.ping` whose `data.webhook_id` names the webhook, signed like any other."""
    queued = await upstream.call(
        upstream.notification.PingWebhook,
        notification_pb2.PingWebhookRequest(webhook_id=str(webhook_id)),
    )
    return WebhookDeliveryOut.from_proto(queued)


@router.post(
    "/{webhook_id}/rotate-secret",
    summary="A new signing secret; the old one keeps signing for a while (ADR 0036)",
    responses=error_responses(404, 413, 422),
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID, body: SecretRotationIn, upstream: WebhooksUpstream
) -> CreatedWebhookOut:
    """The new secret is in this answer only. For `keep_previous_seconds` (a day unless
    given) every delivery carries two signatures, `v1=<new>,v1=<old>`, so the receiver can
    move to the new secret at its own pace; a secret replaced before that stops at once."""
    rotated = await upstream.call(
        upstream.notification.RotateWebhookSecret,
        notification_pb2.RotateWebhookSecretRequest(
            webhook_id=str(webhook_id), keep_previous_seconds=body.keep_previous_seconds
        ),
    )
    return CreatedWebhookOut.from_created(rotated)


@router.get(
    "/{webhook_id}/deliveries",
    summary="A webhook's deliveries, newest first, redeliveries included",
    responses=error_responses(404, 422),
)
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    upstream: WebhooksUpstream,
    state: Annotated[DeliveryState | None, Query(description="Only deliveries in this state.")] = (
        None
    ),
    limit: PageLimit = DEFAULT_PAGE_LIMIT,
    offset: PageOffset = 0,
) -> WebhookDeliveryListOut:
    listed = await upstream.call(
        upstream.notification.ListWebhookDeliveries,
        notification_pb2.ListWebhookDeliveriesRequest(
            webhook_id=str(webhook_id),
            state=state or "",
            page=common_pb2.Page(limit=limit, offset=offset),
        ),
    )
    return WebhookDeliveryListOut.from_proto(listed)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivered or dead-lettered delivery's event again, now",
    responses=error_responses(404, 409, 422),
)
async def redeliver_webhook_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, upstream: WebhooksUpstream
) -> WebhookDeliveryOut:
    """Queues a new delivery (its `redelivery_of` names this one) of the same event, body
    byte for byte, signed with a fresh timestamp when it is sent; the original keeps its
    attempts. 409 while the delivery is still pending (it is retried on its own) or the
    webhook is disabled (enable it first); while a redelivery of the event is pending, that
    one is answered instead of a second."""
    queued = await upstream.call(
        upstream.notification.RedeliverWebhookDelivery,
        notification_pb2.RedeliverWebhookDeliveryRequest(
            webhook_id=str(webhook_id), delivery_id=str(delivery_id)
        ),
    )
    return WebhookDeliveryOut.from_proto(queued)
