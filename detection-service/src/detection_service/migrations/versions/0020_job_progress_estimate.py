"""How far a job had got when a worker last started it: with `started_at`, its pace since, from
which a running job's answers estimate when it will finish.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("processed_at_start", sa.Integer), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("jobs", "processed_at_start", schema=SCHEMA)
