"""Bodies of the webhook routes. A webhook's signing secret appears once, in the creation
response."""

from datetime import datetime
from typing import Literal, Self, get_args

from google.protobuf import field_mask_pb2
from pydantic import ConfigDict, Field, StrictBool, computed_field, model_validator

from gateway.schemas.base import ApiModel, PageOut, PatchModel, ProtoMirror, with_secret
from objectvision.v1 import notification_pb2

MAX_URL_LENGTH = 2048
JobEventType = Literal["job.progress", "job.completed", "job.failed", "job.cancelled"]
DisabledReason = Literal["owner", "failing"]


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


class WebhookUpdateIn(PatchModel):
    """What to change of a webhook; a field left out stays as it is."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="A new destination, checked like a new webhook's; pending deliveries go to it.",
    )
    events: list[JobEventType] | None = Field(
        default=None,
        max_length=len(get_args(JobEventType)),
        description="Event types to deliver from now on; empty means every job event.",
    )
    enabled: StrictBool | None = Field(
        default=None,
        description="false stops deliveries (events are recorded, dead-lettered, for "
        "redelivery); true starts them again and clears the failure count.",
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give `url`, `events`, `enabled` or several")
        return self

    def to_proto(self, webhook_id: str) -> notification_pb2.UpdateWebhookRequest:
        """The request with the fields given, each named in its update mask."""
        changes = self.changes()
        return notification_pb2.UpdateWebhookRequest(
            webhook_id=webhook_id,
            update_mask=field_mask_pb2.FieldMask(paths=sorted(changes)),
            **changes,
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
    disabled_at: datetime | None = Field(
        default=None,
        description="Since when nothing is sent to it (ADR 0046); null while enabled. Events "
        "meanwhile are listed with its deliveries, dead-lettered with the error 'the webhook "
        "is disabled', to be redelivered once it is enabled again.",
    )
    disabled_reason: DisabledReason | None = Field(
        default=None,
        description="owner: its owner disabled it; failing: its deliveries kept being "
        "dead-lettered (WEBHOOK_DISABLE_AFTER_FAILURES in a row over "
        "WEBHOOK_DISABLE_AFTER_SECONDS), and its owner was emailed. Null while enabled.",
    )
    consecutive_failures: int = Field(
        default=0,
        description="Deliveries dead-lettered in a row since the last delivered one.",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def enabled(self) -> bool:
        """Whether events are sent to it: disabled_at is null."""
        return self.disabled_at is None


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
