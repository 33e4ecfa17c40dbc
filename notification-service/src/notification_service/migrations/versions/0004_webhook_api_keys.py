"""The API key that registered each webhook, and when that key expires (ADR 0026, amendment).

Both nullable: a webhook registered from a signed-in session records none, and so do the
webhooks registered before this change, whose key (if any) was not recorded.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "notification"


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("api_key_id", sa.Uuid(), nullable=True), schema=SCHEMA)
    op.add_column(
        "webhooks",
        sa.Column("api_key_expires_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index("ix_webhooks_api_key_id", "webhooks", ["api_key_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_webhooks_api_key_id", table_name="webhooks", schema=SCHEMA)
    op.drop_column("webhooks", "api_key_expires_at", schema=SCHEMA)
    op.drop_column("webhooks", "api_key_id", schema=SCHEMA)
