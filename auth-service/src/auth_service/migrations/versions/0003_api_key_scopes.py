"""API key scopes and expiry (ADR 0026): every key made before has every scope and no expiry.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "auth"
# The scopes as they are at this revision, written out rather than imported: a migration
# records what the schema became then, and must not change meaning when a scope is added.
SCOPES_AT_THIS_REVISION = ("detect", "results:read", "results:write", "webhooks")


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("scopes", postgresql.ARRAY(sa.String(32)), nullable=True),
        schema=SCHEMA,
    )
    # Keys made before scopes existed could do everything a key can; they keep doing it.
    api_keys = sa.table(
        "api_keys", sa.column("scopes", postgresql.ARRAY(sa.String(32))), schema=SCHEMA
    )
    op.execute(api_keys.update().values(scopes=list(SCOPES_AT_THIS_REVISION)))
    op.alter_column("api_keys", "scopes", nullable=False, schema=SCHEMA)
    op.add_column(
        "api_keys",
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("api_keys", "expires_at", schema=SCHEMA)
    op.drop_column("api_keys", "scopes", schema=SCHEMA)
