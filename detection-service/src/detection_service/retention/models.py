"""Retention periods an admin set for one account (ADR 0031): they replace RETENTION_DAYS
for that account."""

import sqlalchemy as sa

from detection_service.accounts.settings import setting_table

retention_periods = setting_table(
    "retention_periods",
    # Days after which the account's finished jobs and detections outside jobs are deleted;
    # 0 keeps them until the owner deletes them, whatever RETENTION_DAYS says.
    sa.Column("days", sa.Integer, nullable=False),
)
