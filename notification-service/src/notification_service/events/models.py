"""Which events have been handled: the key that makes handling idempotent."""

from sqlalchemy import Column, DateTime, Table, Text, Uuid, func

from notification_service.database import metadata

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
