"""Usage metering: images detected per account, UTC day and source, and quotas an admin set
for one account (ADR 0030).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.create_table(
        "usage_days",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("images", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", "source", name="pk_usage_days"),
        sa.CheckConstraint("source IN ('calls', 'jobs')", name="ck_usage_days_source_known"),
        sa.CheckConstraint("images >= 0", name="ck_usage_days_images_not_negative"),
        schema=SCHEMA,
    )
    op.create_table(
        "usage_quotas",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("monthly_images", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_usage_quotas"),
        sa.CheckConstraint(
            "monthly_images >= 0", name="ck_usage_quotas_monthly_images_not_negative"
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("usage_quotas", schema=SCHEMA)
    op.drop_table("usage_days", schema=SCHEMA)
