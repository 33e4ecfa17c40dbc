"""Video jobs that name the zones their tracked objects stand in (ADR 0042). Each object's
zones are stored with it, in video_frames.objects: no column for them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column(
        "video_jobs",
        sa.Column("counting_zones", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("video_jobs", "counting_zones", schema=SCHEMA)
