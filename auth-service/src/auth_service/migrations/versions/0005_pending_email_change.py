"""A change of address waits for the link mailed to the new address (ADR 0033):
`users.pending_email` and when its link expires. No account has one waiting before this.

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

SCHEMA = "auth"


def upgrade() -> None:
    op.add_column("users", sa.Column("pending_email", sa.String(320), nullable=True), schema=SCHEMA)
    op.add_column(
        "users",
        sa.Column("pending_email_expires_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("users", "pending_email_expires_at", schema=SCHEMA)
    op.drop_column("users", "pending_email", schema=SCHEMA)
