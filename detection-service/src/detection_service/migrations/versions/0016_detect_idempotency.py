"""A stored Detect can be retried safely (ADR 0047): its idempotency key and each image's place
in its request are kept on the detections it stored, unique per account. Existing detections
have none.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column("detections", sa.Column("idempotency_key", sa.Text()), schema=SCHEMA)
    op.add_column("detections", sa.Column("request_position", sa.SmallInteger()), schema=SCHEMA)
    op.create_index(
        "uq_detections_user_id_idempotency_key",
        "detections",
        ["user_id", "idempotency_key", "request_position"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_detections_user_id_idempotency_key", "detections", schema=SCHEMA)
    op.drop_column("detections", "request_position", schema=SCHEMA)
    op.drop_column("detections", "idempotency_key", schema=SCHEMA)
