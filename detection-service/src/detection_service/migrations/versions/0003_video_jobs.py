"""Video jobs: a kind on jobs, the uploaded video and its sampling, one row per sampled frame.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("kind", sa.Text, nullable=False, server_default="batch"),
        schema=SCHEMA,
    )
    op.create_check_constraint(
        op.f("ck_jobs_kind"), "jobs", "kind IN ('batch', 'video')", schema=SCHEMA
    )
    op.create_table(
        "video_jobs",
        sa.Column("job_id", UUID(as_uuid=True), nullable=False),
        sa.Column("storage_key", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False, server_default=""),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("container", sa.Text, nullable=False),
        sa.Column("codec", sa.Text, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("duration_seconds", sa.Float, nullable=False),
        sa.Column("frame_rate", sa.Float, nullable=False),
        sa.Column("frame_count", sa.Integer, nullable=False),
        sa.Column("sample_fps", sa.Float),
        sa.Column("sample_every", sa.Integer),
        sa.Column("annotated_key", sa.Text),
        sa.PrimaryKeyConstraint("job_id", name="pk_video_jobs"),
        sa.ForeignKeyConstraint(
            ["job_id"],
            [f"{SCHEMA}.jobs.id"],
            name="fk_video_jobs_job_id_jobs",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("storage_key", name="uq_video_jobs_storage_key"),
        sa.UniqueConstraint("annotated_key", name="uq_video_jobs_annotated_key"),
        sa.CheckConstraint(
            "(sample_fps IS NULL) <> (sample_every IS NULL)", name="ck_video_jobs_one_sampling"
        ),
        schema=SCHEMA,
    )
    op.create_table(
        "video_frames",
        sa.Column("job_id", UUID(as_uuid=True), nullable=False),
        sa.Column("frame_index", sa.Integer, nullable=False),
        sa.Column("timestamp_seconds", sa.Float, nullable=False),
        sa.Column("objects", JSONB, nullable=False),
        sa.Column("object_count", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("job_id", "frame_index", name="pk_video_frames"),
        sa.ForeignKeyConstraint(
            ["job_id"],
            [f"{SCHEMA}.jobs.id"],
            name="fk_video_frames_job_id_jobs",
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("video_frames", schema=SCHEMA)
    op.drop_table("video_jobs", schema=SCHEMA)
    op.execute("DELETE FROM detection.jobs WHERE kind = 'video'")
    op.drop_constraint(op.f("ck_jobs_kind"), "jobs", schema=SCHEMA)
    op.drop_column("jobs", "kind", schema=SCHEMA)
