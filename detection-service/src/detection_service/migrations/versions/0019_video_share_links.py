"""A share link shows a stored detection or a finished video job (ADR 0052): `job_id` beside
`detection_id`, exactly one of them set, the link removed with its job as with its detection.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column("share_links", sa.Column("job_id", UUID(as_uuid=True)), schema=SCHEMA)
    op.alter_column("share_links", "detection_id", nullable=True, schema=SCHEMA)
    op.create_foreign_key(
        "fk_share_links_job_id_jobs",
        "share_links",
        "jobs",
        ["job_id"],
        ["id"],
        source_schema=SCHEMA,
        referent_schema=SCHEMA,
        ondelete="CASCADE",
    )
    op.create_check_constraint(
        "ck_share_links_one_target",
        "share_links",
        "(detection_id IS NULL) <> (job_id IS NULL)",
        schema=SCHEMA,
    )
    op.create_index("ix_share_links_job_id", "share_links", ["job_id"], schema=SCHEMA)


def downgrade() -> None:
    links = sa.table("share_links", sa.column("job_id"), schema=SCHEMA)
    op.execute(sa.delete(links).where(links.c.job_id.is_not(None)))
    op.drop_index("ix_share_links_job_id", "share_links", schema=SCHEMA)
    op.drop_constraint("ck_share_links_one_target", "share_links", schema=SCHEMA)
    op.drop_constraint("fk_share_links_job_id_jobs", "share_links", schema=SCHEMA)
    op.alter_column("share_links", "detection_id", nullable=False, schema=SCHEMA)
    op.drop_column("share_links", "job_id", schema=SCHEMA)
