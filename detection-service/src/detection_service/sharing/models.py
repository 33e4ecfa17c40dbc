"""The share links of stored detections (ADR 0048) and finished video jobs (ADR 0052), and
which accounts are suspended.

A link is a random token; only its SHA-256 is kept, so a copy of the database opens nothing.
A link goes with what it shows (ON DELETE CASCADE): deleting the detection or the job, by its
owner, the retention sweep or an account's erasure, ends every link to it with no step of its
own.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from detection_service.database import SCHEMA, metadata, owned_id_columns

share_links = sa.Table(
    "share_links",
    metadata,
    *owned_id_columns(),
    sa.Column(
        "detection_id",
        UUID(as_uuid=True),
        sa.ForeignKey(f"{SCHEMA}.detections.id", ondelete="CASCADE"),
    ),
    # A video job's link (ADR 0052): its annotated video and what the job counted.
    sa.Column("job_id", UUID(as_uuid=True), sa.ForeignKey(f"{SCHEMA}.jobs.id", ondelete="CASCADE")),
    sa.Column("token_hash", sa.LargeBinary, nullable=False, unique=True),
    sa.Column("token_prefix", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("views", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("last_viewed_at", sa.DateTime(timezone=True)),
    # Classes (lower-case names) the link's image always shows pixelated (ADR 0049).
    sa.Column(
        "redact_classes", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")
    ),
    # The owner's links page, newest first.
    sa.Index("ix_share_links_user_created", "user_id", sa.text("created_at DESC")),
    sa.Index("ix_share_links_detection_id", "detection_id"),
    sa.Index("ix_share_links_job_id", "job_id"),
    sa.CheckConstraint("(detection_id IS NULL) <> (job_id IS NULL)", name="one_target"),
)

# Whether an account is suspended, as auth-service's `user.suspended` and `user.restored`
# events last said (ADR 0032): a suspended account's links show nothing. `changed_at` is the
# event's time, so an older event delivered late never undoes a newer one.
account_standings = sa.Table(
    "account_standings",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("suspended", sa.Boolean, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)
