"""Bodies of the webhook routes. A webhook's signing secret appears once, in the creation
response."""

from datetime import datetime
from typing import Literal, Self, get_args

from pydantic import Field

from gateway.schemas.base import ApiModel, PageOut, ProtoMirror, with_secret
from objectvision.v1 import notification_pb2

MAX_URL_LENGTH = 2048
JobEventType = Literal["job.progress", "job.completed", "job.failed", "job.cancelled"]


class WebhookCreateIn(ApiModel):
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="A public http(s) URL; private, loopback and link-local targets are refused.",
    )
    events: list[JobEventType] = Field(
        default_factory=list,
        max_length=len(get_args(JobEventType)),
        description="Event types to deliver; empty means every job event.",
    )


class WebhookOut(ProtoMirror):
    id: str
    url: str
    events: list[str]
    created_at: datetime
    api_key_id: str | None = Field(
        description="The API key that registered the webhook; null when it was registered "
        "from a signed-in session. The webhook is deleted when that key is revoked, and stops "
        "(is deleted) at its next delivery once the key has expired."
    )
    previous_secret_expires_at: datetime | None = Field(
        default=None,
        description="Until when deliveries are also signed with the secret the last rotation "
        "replaced (ADR 0036); null when only the current secret signs.",
    )


class CreatedWebhookOut(WebhookOut):
    secret: str = Field(
        description="Verifies X-ObjectVision-Signature: v1=hex(HMAC-SHA256(secret, "
        '"<X-ObjectVision-Timestamp>.<raw body>")); while a rotation\'s previous secret still '
        "signs, the header holds one v1= value per secret, comma-separated, and a delivery "
        "is genuine if any of them matches. Shown only once."
    )

    @classmethod
    def from_created(cls, created: notification_pb2.CreatedWebhook) -> Self:
        return with_secret(cls, WebhookOut.from_proto(created.webhook), created.secret)


class WebhookListOut(ApiModel):
    items: list[WebhookOut]


DeliveryState = Literal["pending", "delivered", "dead"]


class WebhookDeliveryOut(ProtoMirror):
    """One delivery of an event to the webhook: where it stands and how its last attempt went.
    The body sent is not shown (the receiver has it), nor anything the receiver answered
    beyond its status code (nothing else is kept)."""

    id: str = Field(description="Sent as X-ObjectVision-Delivery; new for each redelivery.")
    webhook_id: str
    event_id: str = Field(
        description="The event's id, the body's `id`: the same in every redelivery, to "
        "deduplicate on."
    )
    event_type: str
    state: DeliveryState = Field(
        description="pending: due or being retried; delivered: the receiver answered 2xx; "
        "dead: given up (dead-lettered) after the last attempt or a permanent failure."
    )
    attempts: int
    last_attempt_at: datetime | None = Field(description="Null before the first attempt.")
    last_status_code: int | None = Field(
        description="The receiver's HTTP status at the last attempt; null when no answer came "
        "(no attempt yet, connection refused, timeout, destination refused)."
    )
    last_error: str | None = Field(
        description="Why the last attempt failed, shortened; null after a success."
    )
    next_attempt_at: datetime | None = Field(description="When a pending delivery goes next.")
    created_at: datetime
    delivered_at: datetime | None
    redelivery_of: str | None = Field(
        description="The delivery this one redelivers; null for the event's first delivery."
    )


class WebhookDeliveryListOut(PageOut[WebhookDeliveryOut]):
    """One page of a webhook's deliveries, newest first."""

    total: int = Field(description="How many deliveries match the filter in all.")

    @classmethod
    def from_proto(cls, listed: notification_pb2.ListWebhookDeliveriesResponse) -> Self:
        return cls.of(map(WebhookDeliveryOut.from_proto, listed.deliveries), listed)


class SecretRotationIn(ApiModel):
    keep_previous_seconds: int = Field(
        default=86400,
        ge=0,
        le=7 * 86400,
        description="How long the replaced secret keeps signing beside the new one, so the "
        "receiver can switch without missing a delivery (0: it stops now; at most 7 days).",
    )
