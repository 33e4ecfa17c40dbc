"""Tables of batch jobs and their items."""

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from detection_service.database import SCHEMA, metadata, owned_id_columns

PENDING = "pending"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
# Stopped by its owner (ADR 0022); on an item: still pending when its job was cancelled.
CANCELLED = "cancelled"
UNFINISHED = (PENDING, PROCESSING)
FINISHED = (COMPLETED, FAILED, CANCELLED)
# What a job processes: a batch of images (job_items) or one video (video.models).
KIND_BATCH = "batch"
KIND_VIDEO = "video"


def job_key() -> sa.Column[uuid.UUID]:
    """`job_id`, part of the primary key of a table that belongs to one job (its items, a
    video job's file and frames), gone with the job."""
    return sa.Column(
        "job_id",
        UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.jobs.id", ondelete="CASCADE"),
        primary_key=True,
    )


jobs = sa.Table(
    "jobs",
    metadata,
    *owned_id_columns(),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    # Items finished either way (processed includes failed): progress is processed / total.
    sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("params", JSONB, nullable=False),
    sa.Column("idempotency_key", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    # Last sign of life from a worker (or the last re-enqueue); the sweeper's clock.
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    # Just before the job's latest message was added to the stream (its submission, a sweep
    # that put it back, a turn it gave another account): whether its message stands behind
    # another one on the stream (ADR 0044).
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    # When a worker last started or took over the job: which account was served longest ago.
    sa.Column("started_at", sa.DateTime(timezone=True)),
    # `processed` at that moment: the items finished since, over the time since, are the pace
    # a running job's finish is estimated from.
    sa.Column("processed_at_start", sa.Integer),
    # 'batch' (job_items of images) or 'video' (a video_jobs row and its video_frames).
    sa.Column("kind", sa.Text, nullable=False, server_default="batch"),
    # The model asked for at submission (resolved: never empty on new jobs) and the version
    # that answered its items.
    sa.Column("model", sa.Text),
    sa.Column("model_version", sa.Text),
    # The caller's own key-value pairs (ADR 0045): echoed in the job's answers and events,
    # and matched by containment (`@>`) when the jobs list filters by them.
    sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    # Set as the job ends, with its final event: the objects per class it found.
    sa.Column("class_counts", JSONB),
    # The job whose stored images or video this one ran again (ADR 0058); cleared when that
    # job is deleted, as its images then are.
    sa.Column(
        "rerun_of",
        UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.jobs.id", ondelete="SET NULL", name="fk_jobs_rerun_of_jobs"),
    ),
    sa.CheckConstraint("kind IN ('batch', 'video')", name="kind"),
    sa.CheckConstraint(
        "status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')", name="status"
    ),
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_jobs_user_id_idempotency_key"),
    sa.Index(
        "ix_jobs_unfinished_heartbeat",
        "heartbeat_at",
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    ),
    # The accounts with jobs waiting or running, and what each has running (ADR 0044).
    sa.Index(
        "ix_jobs_unfinished_user",
        "user_id",
        "status",
        postgresql_where=sa.text("status IN ('pending', 'processing')"),
    ),
    # An account's latest start (ADR 0044).
    sa.Index("ix_jobs_user_started", "user_id", "started_at"),
    sa.Index(
        "ix_jobs_metadata",
        "metadata",
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
    ),
    # What deleting a job clears (rerun_of's ON DELETE SET NULL) found without a scan.
    sa.Index("ix_jobs_rerun_of", "rerun_of", postgresql_where=sa.text("rerun_of IS NOT NULL")),
    # A user's jobs, newest first; the id breaks ties between equal timestamps.
    sa.Index("ix_jobs_user_created", "user_id", sa.text("created_at DESC"), sa.text("id DESC")),
)

job_items = sa.Table(
    "job_items",
    metadata,
    job_key(),
    sa.Column("position", sa.Integer, primary_key=True),
    # None for a file refused at submission (its reason in `error`, its name in `filename`).
    sa.Column("image_id", UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.images.id")),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column(
        "detection_id",
        UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.detections.id", ondelete="SET NULL"),
    ),
    sa.Column("object_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("filename", sa.Text),
    sa.CheckConstraint("status IN ('pending', 'completed', 'failed', 'cancelled')", name="status"),
    sa.CheckConstraint(
        "image_id IS NOT NULL OR (status = 'failed' AND filename IS NOT NULL)",
        name="image_or_refused",
    ),
)
