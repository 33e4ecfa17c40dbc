"""Retention periods an admin set for one account, replacing RETENTION_DAYS for it (ADR 0031).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.create_table(
        "retention_periods",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_retention_periods"),
        sa.CheckConstraint("days >= 0", name="ck_retention_periods_days_not_negative"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("retention_periods", schema=SCHEMA)
