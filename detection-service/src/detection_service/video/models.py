"""Tables of video jobs: the uploaded file and how it is sampled, and one row per sampled frame.

A video job is a row of `jobs` (kind 'video'), so progress, the final event, the WebSocket and
ownership checks are the batch jobs' own; what is particular to a video lives here.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from detection_service.database import metadata
from detection_service.jobs.models import job_key

video_jobs = sa.Table(
    "video_jobs",
    metadata,
    job_key(),
    sa.Column("storage_key", sa.Text, nullable=False, unique=True),
    sa.Column("filename", sa.Text, nullable=False, server_default=""),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("container", sa.Text, nullable=False),
    sa.Column("codec", sa.Text, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("duration_seconds", sa.Float, nullable=False),
    sa.Column("frame_rate", sa.Float, nullable=False),
    sa.Column("frame_count", sa.Integer, nullable=False),
    # Exactly one of the two: at most this many frames a second, or every n-th frame.
    sa.Column("sample_fps", sa.Float),
    sa.Column("sample_every", sa.Integer),
    # Objects are followed from sampled frame to sampled frame (track_id, ADR 0038).
    sa.Column("tracked", sa.Boolean, nullable=False, server_default=sa.false()),
    # [{"name", "start": [x, y], "end": [x, y]}]: lines whose crossings are counted (ADR 0039).
    sa.Column("counting_lines", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    # [{"name", "polygon": [[x, y], ...]}]: zones each object is told to stand in (ADR 0042).
    sa.Column("counting_zones", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    # Set in the transaction that finishes the job, once the annotated file is stored.
    sa.Column("annotated_key", sa.Text, unique=True),
    # Classes (lower-case names) the annotated video shows pixelated (ADR 0049).
    sa.Column(
        "redact_classes", ARRAY(sa.Text), nullable=False, server_default=sa.text("'{}'::text[]")
    ),
    sa.CheckConstraint("(sample_fps IS NULL) <> (sample_every IS NULL)", name="one_sampling"),
)

video_frames = sa.Table(
    "video_frames",
    metadata,
    job_key(),
    # Presentation-order index of the frame in the whole video (not among sampled frames).
    sa.Column("frame_index", sa.Integer, primary_key=True),
    sa.Column("timestamp_seconds", sa.Float, nullable=False),
    # [{"class_id", "class_name", "confidence", "x1", "y1", "x2", "y2"}] in frame pixels,
    # with "track_id" in a tracked video once the object's track is confirmed, and "zones"
    # (names) where the video has counting zones and the object stands in some.
    sa.Column("objects", JSONB, nullable=False),
    sa.Column("object_count", sa.Integer, nullable=False),
    # [{"line", "track_id", "class_id", "class_name", "direction"}]: the frame's objects that
    # crossed a counting line; summed, the job's line counts.
    sa.Column("crossings", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("error", sa.Text),
)
