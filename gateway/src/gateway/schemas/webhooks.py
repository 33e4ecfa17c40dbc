"""Bodies of the webhook routes. A webhook's signing secret appears once, in the creation
response."""

from datetime import datetime
from typing import Literal, Self

from pydantic import Field

from gateway.schemas.base import ApiModel, ProtoMirror, with_secret
from objectvision.v1 import notification_pb2

MAX_URL_LENGTH = 2048
JobEventType = Literal["job.progress", "job.completed", "job.failed"]


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


class WebhookOut(ProtoMirror):
    id: str
    url: str
    events: list[str]
    created_at: datetime


class CreatedWebhookOut(WebhookOut):
    secret: str = Field(
        description="Verifies X-ObjectVision-Signature: v1=hex(HMAC-SHA256(secret, "
        '"<X-ObjectVision-Timestamp>.<raw body>")). Shown only once.'
    )

    @classmethod
    def from_created(cls, created: notification_pb2.CreatedWebhook) -> Self:
        return with_secret(cls, WebhookOut.from_proto(created.webhook), created.secret)


class WebhookListOut(ApiModel):
    items: list[WebhookOut]
