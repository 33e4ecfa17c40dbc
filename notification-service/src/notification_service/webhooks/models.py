"""Webhook registrations; the signing secret is stored encrypted (see webhooks.secrets)."""

from sqlalchemy import ARRAY, Column, DateTime, Index, Table, Text, UniqueConstraint, Uuid, func

from notification_service.database import metadata

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("url", Text, nullable=False),
    Column("events", ARRAY(Text), nullable=False),
    Column("secret_ciphertext", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("user_id", "url", name="uq_webhooks_user_id_url"),
    Index("ix_webhooks_user_id", "user_id"),
)
