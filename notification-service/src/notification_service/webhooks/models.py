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
    # The secret the last rotation replaced and until when it still signs beside the current
    # one (ADR 0036), so a receiver switching secrets misses no delivery. Null otherwise.
    Column("previous_secret_ciphertext", Text, nullable=True),
    Column("previous_secret_expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The API key that registered the webhook and when that key expires (ADR 0026, amendment):
    # the webhook is deleted when the key is revoked (`api_key.revoked`) or, at its next due
    # delivery, once the key has expired. Null for a signed-in session's webhook, and for
    # those registered before keys were recorded.
    Column("api_key_id", Uuid, nullable=True),
    Column("api_key_expires_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("user_id", "url", name="uq_webhooks_user_id_url"),
    Index("ix_webhooks_user_id", "user_id"),
    Index("ix_webhooks_api_key_id", "api_key_id"),
)
