"""Stored detections keep their callers' own key-value pairs, and the history filters by them
(ADR 0045): a Detect's own, or its job's; the detections of jobs that ended before are given
their job's.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "detections",
        sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        schema=SCHEMA,
    )
    # Only the detections of jobs that had metadata are written; the rest keep the default.
    op.execute(
        """
        UPDATE detection.detections AS detection SET metadata = job.metadata
        FROM detection.jobs AS job
        WHERE detection.job_id = job.id AND job.metadata <> '{}'::jsonb
        """
    )
    op.create_index(
        "ix_detections_metadata",
        "detections",
        ["metadata"],
        schema=SCHEMA,
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_detections_metadata", table_name="detections", schema=SCHEMA)
    op.drop_column("detections", "metadata", schema=SCHEMA)
