"""Video jobs that follow objects from frame to frame (ADR 0038).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column(
        "video_jobs",
        sa.Column("tracked", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("video_jobs", "tracked", schema=SCHEMA)
