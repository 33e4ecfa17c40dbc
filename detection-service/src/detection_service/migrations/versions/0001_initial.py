"""Detections, results, stored images, jobs, job items and the outbox.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

from objectvision_common.outbox import create_outbox_table

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "detection"


def _ts(name: str, **kwargs: Any) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), **kwargs)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("params", JSONB, nullable=False),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("error", sa.Text),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _ts("completed_at"),
        _ts("heartbeat_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')", name="ck_jobs_status"
        ),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_user_id_idempotency_key"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_jobs_unfinished_heartbeat",
        "jobs",
        ["heartbeat_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    )

    op.create_table(
        "detections",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("job_id", UUID(as_uuid=True)),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False, server_default=""),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("object_count", sa.Integer, nullable=False),
        sa.Column("timings", JSONB, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_detections"),
        sa.ForeignKeyConstraint(
            ["job_id"],
            [f"{SCHEMA}.jobs.id"],
            name="fk_detections_job_id_jobs",
            ondelete="SET NULL",
        ),
        schema=SCHEMA,
    )
    op.execute(
        f"CREATE INDEX ix_detections_user_created ON {SCHEMA}.detections "
        "(user_id, created_at DESC, id DESC)"
    )
    op.create_index("ix_detections_job_id", "detections", ["job_id"], schema=SCHEMA)

    op.create_table(
        "results",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("detection_id", UUID(as_uuid=True), nullable=False),
        sa.Column("class_id", sa.SmallInteger, nullable=False),
        sa.Column("class_name", sa.Text, nullable=False),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("x", sa.Float, nullable=False),
        sa.Column("y", sa.Float, nullable=False),
        sa.Column("width", sa.Float, nullable=False),
        sa.Column("height", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_results"),
        sa.ForeignKeyConstraint(
            ["detection_id"],
            [f"{SCHEMA}.detections.id"],
            name="fk_results_detection_id_detections",
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_results_detection_id", "results", ["detection_id"], schema=SCHEMA)
    op.create_index(
        "ix_results_class_detection", "results", ["class_id", "detection_id"], schema=SCHEMA
    )

    op.create_table(
        "images",
        sa.Column("id", UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("detection_id", UUID(as_uuid=True)),
        sa.Column("storage_key", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("original_filename", sa.Text, nullable=False, server_default=""),
        sa.Column("processed", sa.Boolean, nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_images"),
        sa.ForeignKeyConstraint(
            ["detection_id"],
            [f"{SCHEMA}.detections.id"],
            name="fk_images_detection_id_detections",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("detection_id", name="uq_images_detection_id"),
        sa.UniqueConstraint("storage_key", name="uq_images_storage_key"),
        schema=SCHEMA,
    )

    op.create_table(
        "job_items",
        sa.Column("job_id", UUID(as_uuid=True), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("image_id", UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("detection_id", UUID(as_uuid=True)),
        sa.Column("object_count", sa.Integer, nullable=False, server_default="0"),
        _ts("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("job_id", "position", name="pk_job_items"),
        sa.ForeignKeyConstraint(
            ["job_id"],
            [f"{SCHEMA}.jobs.id"],
            name="fk_job_items_job_id_jobs",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], [f"{SCHEMA}.images.id"], name="fk_job_items_image_id_images"
        ),
        sa.ForeignKeyConstraint(
            ["detection_id"],
            [f"{SCHEMA}.detections.id"],
            name="fk_job_items_detection_id_detections",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'completed', 'failed')", name="ck_job_items_status"
        ),
        schema=SCHEMA,
    )

    # The shared outbox shape, which the relay reads (objectvision_common.outbox).
    create_outbox_table(op, schema=SCHEMA)


def downgrade() -> None:
    for table in ("outbox", "job_items", "images", "results", "detections", "jobs"):
        op.drop_table(table, schema=SCHEMA)
