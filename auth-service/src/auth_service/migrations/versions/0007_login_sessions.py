"""The account's list of its sessions (ADR 0035): what each login was (when, from where, with
a second factor or not). Sessions opened before have no row and are listed without it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "auth"


def upgrade() -> None:
    op.create_table(
        "login_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("client_ip", sa.String(64), server_default="", nullable=False),
        sa.Column("user_agent", sa.String(256), server_default="", nullable=False),
        sa.Column("second_factor", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            [f"{SCHEMA}.users.id"],
            name="fk_login_sessions_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_login_sessions"),
        schema=SCHEMA,
    )
    op.create_index("ix_auth_login_sessions_user_id", "login_sessions", ["user_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("login_sessions", schema=SCHEMA)
