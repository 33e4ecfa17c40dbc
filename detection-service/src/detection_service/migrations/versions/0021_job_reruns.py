"""A job run again over what another job stored (ADR 0058) names that job.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("rerun_of", UUID(as_uuid=True)), schema=SCHEMA)
    op.create_foreign_key(
        "fk_jobs_rerun_of_jobs",
        "jobs",
        "jobs",
        ["rerun_of"],
        ["id"],
        source_schema=SCHEMA,
        referent_schema=SCHEMA,
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_jobs_rerun_of",
        "jobs",
        ["rerun_of"],
        schema=SCHEMA,
        postgresql_where=sa.text("rerun_of IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_rerun_of", "jobs", schema=SCHEMA)
    op.drop_constraint("fk_jobs_rerun_of_jobs", "jobs", schema=SCHEMA)
    op.drop_column("jobs", "rerun_of", schema=SCHEMA)
