"""A video job can ask for classes its annotated video shows pixelated (ADR 0049). Existing
jobs redact nothing.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column(
        "video_jobs",
        sa.Column(
            "redact_classes",
            ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("video_jobs", "redact_classes", schema=SCHEMA)
