"""Share links of stored detections (ADR 0048), kept as token hashes and removed with their
detection, with the classes their image pixelates (ADR 0049), and the suspended accounts
whose links show nothing.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.create_table(
        "share_links",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("detection_id", UUID(as_uuid=True), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("token_prefix", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("views", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_viewed_at", sa.DateTime(timezone=True)),
        sa.Column(
            "redact_classes",
            ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["detection_id"],
            [f"{SCHEMA}.detections.id"],
            name="fk_share_links_detection_id_detections",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_share_links"),
        sa.UniqueConstraint("token_hash", name="uq_share_links_token_hash"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_share_links_user_created",
        "share_links",
        ["user_id", sa.text("created_at DESC")],
        schema=SCHEMA,
    )
    op.create_index("ix_share_links_detection_id", "share_links", ["detection_id"], schema=SCHEMA)
    op.create_table(
        "account_standings",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("suspended", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_account_standings"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("account_standings", schema=SCHEMA)
    op.drop_index("ix_share_links_detection_id", "share_links", schema=SCHEMA)
    op.drop_index("ix_share_links_user_created", "share_links", schema=SCHEMA)
    op.drop_table("share_links", schema=SCHEMA)
