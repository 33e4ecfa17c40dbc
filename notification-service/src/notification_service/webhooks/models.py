"""Webhook registrations; the signing secret is stored encrypted (see webhooks.secrets)."""

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)

from notification_service.database import metadata

# Why a webhook is disabled (ADR 0046): its owner paused it, or its deliveries kept failing.
BY_OWNER = "owner"
FAILING = "failing"
DISABLED_REASONS = (BY_OWNER, FAILING)

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
    # Set while nothing is sent to it (ADR 0046), with why; events meanwhile are recorded as
    # dead-lettered deliveries, to be redelivered once it is enabled again.
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    Column("disabled_reason", Text, nullable=True),
    # Deliveries dead-lettered in a row since the last delivered one, and when the first of
    # them was given up: what disables a failing webhook.
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("failing_since", DateTime(timezone=True), nullable=True),
    CheckConstraint(
        "(disabled_at IS NULL AND disabled_reason IS NULL)"
        f" OR (disabled_at IS NOT NULL AND disabled_reason IN {DISABLED_REASONS!r})",
        name="disabled_reason",
    ),
    UniqueConstraint("user_id", "url", name="uq_webhooks_user_id_url"),
    Index("ix_webhooks_user_id", "user_id"),
    Index("ix_webhooks_api_key_id", "api_key_id"),
)
