"""Webhooks can be disabled, by their owner or because their deliveries keep failing
(ADR 0046), and the service stages its own events (`webhook.disabled`) in an outbox.

Every existing webhook stays enabled with no failures counted.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from objectvision_common.outbox import create_outbox_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "notification"


def upgrade() -> None:
    op.add_column(
        "webhooks",
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.add_column("webhooks", sa.Column("disabled_reason", sa.Text(), nullable=True), schema=SCHEMA)
    op.add_column(
        "webhooks",
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    op.add_column(
        "webhooks",
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_check_constraint(
        "ck_webhooks_disabled_reason",
        "webhooks",
        "(disabled_at IS NULL AND disabled_reason IS NULL)"
        " OR (disabled_at IS NOT NULL AND disabled_reason IN ('owner', 'failing'))",
        schema=SCHEMA,
    )
    create_outbox_table(op, schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("outbox", schema=SCHEMA)
    op.drop_constraint("ck_webhooks_disabled_reason", "webhooks", schema=SCHEMA)
    for column in ("failing_since", "consecutive_failures", "disabled_reason", "disabled_at"):
        op.drop_column("webhooks", column, schema=SCHEMA)
