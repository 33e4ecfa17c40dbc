"""Which model and version answered: on each detection, and on each job (its model as asked
at submission, and the version that answered its items).

Nullable: rows stored before models were a resource have none (they were all the default
``yolov8n``, version 1, but nothing recorded that).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    for table in ("detections", "jobs"):
        op.add_column(table, sa.Column("model", sa.Text), schema=SCHEMA)
        op.add_column(table, sa.Column("model_version", sa.Text), schema=SCHEMA)


def downgrade() -> None:
    for table in ("detections", "jobs"):
        op.drop_column(table, "model_version", schema=SCHEMA)
        op.drop_column(table, "model", schema=SCHEMA)
