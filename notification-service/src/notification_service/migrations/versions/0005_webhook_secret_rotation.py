"""A webhook's signing secret can be rotated (ADR 0036): the replaced secret and until when it
still signs beside the new one. Null for every webhook until its first rotation.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "notification"


def upgrade() -> None:
    op.add_column(
        "webhooks", sa.Column("previous_secret_ciphertext", sa.Text(), nullable=True), schema=SCHEMA
    )
    op.add_column(
        "webhooks",
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("webhooks", "previous_secret_expires_at", schema=SCHEMA)
    op.drop_column("webhooks", "previous_secret_ciphertext", schema=SCHEMA)
