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
    UniqueConstraint,
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
    UniqueConstraint("event_id", "channel", "target", name="uq_deliveries_event_channel_target"),
    CheckConstraint(f"state IN {STATES!r}", name="state"),
    CheckConstraint(f"channel IN {CHANNELS!r}", name="channel"),
    # The dispatcher's only query: pending rows that are due.
    Index("ix_deliveries_due", "next_attempt_at", postgresql_where=text("state = 'pending'")),
    Index("ix_deliveries_created_at", "created_at"),
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
