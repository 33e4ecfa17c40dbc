"""Jobs remember when their message was last queued and when a worker last started them, so
that a worker can give an account that waits behind another a turn first (ADR 0044).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("queued_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("jobs", sa.Column("started_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.execute("UPDATE detection.jobs SET queued_at = created_at")
    op.alter_column("jobs", "queued_at", nullable=False, schema=SCHEMA)
    op.create_index(
        "ix_jobs_unfinished_user",
        "jobs",
        ["user_id", "status"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )
    op.create_index("ix_jobs_user_started", "jobs", ["user_id", "started_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_jobs_user_started", table_name="jobs", schema=SCHEMA)
    op.drop_index("ix_jobs_unfinished_user", table_name="jobs", schema=SCHEMA)
    op.drop_column("jobs", "started_at", schema=SCHEMA)
    op.drop_column("jobs", "queued_at", schema=SCHEMA)
