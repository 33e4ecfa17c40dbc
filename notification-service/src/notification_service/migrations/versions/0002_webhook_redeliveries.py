"""Webhook redeliveries: rows linked to the delivery they redeliver; owners' listing index.

The unique (event, channel, target) constraint becomes a unique index over first deliveries
only (redelivery_of IS NULL), so a redelivery can be a row of its own; a second unique index
keeps one delivery of an event to a webhook pending at a time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "notification"


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("redelivery_of", sa.Uuid(), nullable=True), schema=SCHEMA)
    op.create_foreign_key(
        "fk_deliveries_redelivery_of_deliveries",
        "deliveries",
        "deliveries",
        ["redelivery_of"],
        ["id"],
        source_schema=SCHEMA,
        referent_schema=SCHEMA,
        ondelete="CASCADE",
    )
    op.drop_constraint("uq_deliveries_event_channel_target", "deliveries", schema=SCHEMA)
    op.create_index(
        "uq_deliveries_event_channel_target",
        "deliveries",
        ["event_id", "channel", "target"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("redelivery_of IS NULL"),
    )
    op.create_index(
        "uq_deliveries_pending_event_webhook",
        "deliveries",
        ["event_id", "webhook_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index(
        "ix_deliveries_webhook_id_created_at",
        "deliveries",
        ["webhook_id", "created_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    # The first deliveries' uniqueness cannot come back while redeliveries exist beside them.
    op.execute("DELETE FROM notification.deliveries WHERE redelivery_of IS NOT NULL")
    op.drop_index("ix_deliveries_webhook_id_created_at", "deliveries", schema=SCHEMA)
    op.drop_index("uq_deliveries_pending_event_webhook", "deliveries", schema=SCHEMA)
    op.drop_index("uq_deliveries_event_channel_target", "deliveries", schema=SCHEMA)
    op.create_unique_constraint(
        "uq_deliveries_event_channel_target",
        "deliveries",
        ["event_id", "channel", "target"],
        schema=SCHEMA,
    )
    op.drop_constraint("fk_deliveries_redelivery_of_deliveries", "deliveries", schema=SCHEMA)
    op.drop_column("deliveries", "redelivery_of", schema=SCHEMA)
