"""The table of stored uploads: one row per image kept in object storage, whoever stored it
(a stored Detect, a batch job's item), pointing at the detection made from it once there is one."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from detection_service.database import SCHEMA, metadata, owned_id_columns

images = sa.Table(
    "images",
    metadata,
    *owned_id_columns(),
    sa.Column(
        "detection_id",
        UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.detections.id", ondelete="SET NULL"),
        unique=True,
    ),
    sa.Column("storage_key", sa.Text, nullable=False, unique=True),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("original_filename", sa.Text, nullable=False, server_default=""),
    # False while a job has the image queued; true once a detection was made from it.
    sa.Column("processed", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
