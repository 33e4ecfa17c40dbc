"""Job items for files refused at submission: no stored image, their own filename.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.alter_column("job_items", "image_id", nullable=True, schema=SCHEMA)
    op.add_column("job_items", sa.Column("filename", sa.Text), schema=SCHEMA)
    op.create_check_constraint(
        "image_or_refused",
        "job_items",
        "image_id IS NOT NULL OR (status = 'failed' AND filename IS NOT NULL)",
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.execute("DELETE FROM detection.job_items WHERE image_id IS NULL")
    op.drop_constraint("image_or_refused", "job_items", schema=SCHEMA)
    op.drop_column("job_items", "filename", schema=SCHEMA)
    op.alter_column("job_items", "image_id", nullable=False, schema=SCHEMA)
