"""Deliveries (one per event, channel and target) and every attempt made at each."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from notification_service.database import metadata

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
STATES = (PENDING, DELIVERED, DEAD)

EMAIL = "email"
WEBHOOK = "webhook"
CHANNELS = (EMAIL, WEBHOOK)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "event_id",
        Uuid,
        ForeignKey("processed_events.event_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_type", Text, nullable=False),
    Column("user_id", Uuid, nullable=True),
    Column("channel", Text, nullable=False),
    # An email address or a webhook URL, for people reading the table.
    Column("target", Text, nullable=False),
    Column("webhook_id", Uuid, ForeignKey("webhooks.id", ondelete="SET NULL"), nullable=True),
    # What to send, rendered when the event was handled, so retries send the same thing.
    Column("payload", JSONB, nullable=False),
    Column("state", Text, nullable=False, server_default=PENDING),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    # A redelivery a webhook's owner asked for: a row of its own, so the original keeps its
    # attempts and outcome (docs/adr/0023-webhook-redelivery.md). Deleted with the original
    # (all go with their event anyway): set to null instead, each would pass for the first.
    Column(
        "redelivery_of",
        Uuid,
        ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=True,
    ),
    CheckConstraint(f"state IN {STATES!r}", name="state"),
    CheckConstraint(f"channel IN {CHANNELS!r}", name="channel"),
    # Handling an event twice creates nothing new: one first delivery per (event, channel,
    # target). Redeliveries are further rows of the same three.
    Index(
        "uq_deliveries_event_channel_target",
        "event_id",
        "channel",
        "target",
        unique=True,
        postgresql_where=text("redelivery_of IS NULL"),
    ),
    # At most one delivery of an event to a webhook in flight: a second redelivery asked for
    # meanwhile finds this one instead of sending the event twice at once.
    Index(
        "uq_deliveries_pending_event_webhook",
        "event_id",
        "webhook_id",
        unique=True,
        postgresql_where=text("state = 'pending'"),
    ),
    # The dispatcher's only query: pending rows that are due.
    Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
    Index("ix_deliveries_created_at", "created_at"),
    # A webhook's deliveries, newest first, for its owner.
    Index("ix_deliveries_webhook_id_created_at", "webhook_id", "created_at"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "delivery_id",
        Uuid,
        ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    # HTTP status for webhooks and Brevo, SMTP reply code for SMTP; null when none came back.
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_delivery_attempts_delivery_id", "delivery_id"),
)
