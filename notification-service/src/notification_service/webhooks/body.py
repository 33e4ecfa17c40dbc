"""What a webhook receives: one JSON body per event, the same for every delivery of it."""

import json
import uuid
from typing import Any

from google.protobuf import json_format

from notification_service.links import ConsoleLinks
from objectvision.v1 import notification_pb2

# The event of a test delivery its owner asked for (PingWebhook, ADR 0046): sent to that one
# webhook only, even while it is disabled.
PING = "webhook.ping"


def ping_event(webhook_id: uuid.UUID) -> notification_pb2.Event:
    """A new `webhook.ping` event for one webhook, with its own id and the time now."""
    event = notification_pb2.Event(
        id=str(uuid.uuid4()),
        type=PING,
        webhook_ping=notification_pb2.WebhookPing(webhook_id=str(webhook_id)),
    )
    event.occurred_at.GetCurrentTime()
    return event


def webhook_body(event: notification_pb2.Event, *, links: ConsoleLinks) -> str:
    """The JSON a webhook receives; signed byte for byte, so built once and stored.

    `console_url` is the console page of what the event is about (the job), so a receiver
    can link a person straight to it without knowing how the console routes."""
    payload_field = event.WhichOneof("payload")
    data: dict[str, Any] = {}
    if payload_field is not None:
        data = json_format.MessageToDict(
            getattr(event, payload_field),
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
    body: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at.ToJsonString(),
        "data": data,
    }
    job_id = data.get("job_id")
    if isinstance(job_id, str) and job_id:
        body["console_url"] = links.job(job_id)
    return json.dumps(body, separators=(",", ":"), sort_keys=True)
