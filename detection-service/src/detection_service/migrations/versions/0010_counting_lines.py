"""Video jobs that count the tracked objects crossing lines (ADR 0039).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column(
        "video_jobs",
        sa.Column("counting_lines", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema=SCHEMA,
    )
    op.add_column(
        "video_frames",
        sa.Column("crossings", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("video_frames", "crossings", schema=SCHEMA)
    op.drop_column("video_jobs", "counting_lines", schema=SCHEMA)
