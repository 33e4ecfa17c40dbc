"""Retention periods an admin set for one account (ADR 0031): they replace RETENTION_DAYS
for that account."""

import sqlalchemy as sa

from detection_service.database import metadata

retention_periods = sa.Table(
    "retention_periods",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    # Days after which the account's finished jobs and detections outside jobs are deleted;
    # 0 keeps them until the owner deletes them, whatever RETENTION_DAYS says.
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("days >= 0", name="days_not_negative"),
)
