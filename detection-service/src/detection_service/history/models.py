"""Tables of stored detections: one row per image analysed and its objects.

The stored upload a detection was made from is the images domain's (images.models).
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

from detection_service.database import SCHEMA, metadata, owned_id_columns

DETECTION_COMPLETED = "completed"
# The unique index of stored Detects' idempotency keys: a concurrent retry meets it.
IDEMPOTENCY_INDEX = "uq_detections_user_id_idempotency_key"

detections = sa.Table(
    "detections",
    metadata,
    *owned_id_columns(),
    sa.Column(
        "job_id", UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.jobs.id", ondelete="SET NULL")
    ),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("filename", sa.Text, nullable=False, server_default=""),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("object_count", sa.Integer, nullable=False),
    sa.Column("timings", JSONB, nullable=False),
    sa.Column("params", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # The model and version that answered (none on rows older than migration 0004).
    sa.Column("model", sa.Text),
    sa.Column("model_version", sa.Text),
    # The caller's own key-value pairs (ADR 0045): a Detect's own, or its job's for a job's
    # detection (copied as the item is recorded), matched by containment (`@>`) when the
    # history filters by them.
    sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    # A stored Detect's idempotency key and the image's place in its request (ADR 0047): a
    # retry with the key is answered with these rows. Null for the rest.
    sa.Column("idempotency_key", sa.Text),
    sa.Column("request_position", sa.SmallInteger),
    # History pages: a user's newest first; the id breaks ties between equal timestamps.
    sa.Index(
        "ix_detections_user_created",
        "user_id",
        sa.text("created_at DESC"),
        sa.text("id DESC"),
    ),
    sa.Index("ix_detections_job_id", "job_id"),
    # One stored Detect per key and account; also what a retry reads its answer from.
    sa.Index(
        IDEMPOTENCY_INDEX,
        "user_id",
        "idempotency_key",
        "request_position",
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    ),
    sa.Index(
        "ix_detections_metadata",
        "metadata",
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
    ),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "detection_id",
        UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.detections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("class_id", sa.SmallInteger, nullable=False),
    sa.Column("class_name", sa.Text, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    # Top-left corner and size in original-image pixels; x2 = x + width, y2 = y + height.
    sa.Column("x", sa.Float, nullable=False),
    sa.Column("y", sa.Float, nullable=False),
    sa.Column("width", sa.Float, nullable=False),
    sa.Column("height", sa.Float, nullable=False),
    sa.Index("ix_results_detection_id", "detection_id"),
    # The class filter of the history: "detections of this user that contain a <class>".
    sa.Index("ix_results_class_detection", "class_id", "detection_id"),
)
