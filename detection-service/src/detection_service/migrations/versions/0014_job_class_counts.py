"""A finished job keeps the objects per class its final event counted, so that reading the job
answers them without counting its detections or frames again (ADR 0006, amended
2026-12-06).

The jobs that ended before this revision get theirs counted here, as the final event would
have: over a batch job's detections, over a video job's frames.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SCHEMA = "detection"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("class_counts", JSONB), schema=SCHEMA)
    op.execute(
        """
        UPDATE detection.jobs AS job SET class_counts = COALESCE((
            SELECT jsonb_object_agg(counted.class_name, counted.objects)
            FROM (
                SELECT result.class_name, count(*) AS objects
                FROM detection.results AS result
                JOIN detection.detections AS detection ON detection.id = result.detection_id
                WHERE detection.job_id = job.id
                GROUP BY result.class_name
            ) AS counted
        ), '{}'::jsonb)
        WHERE job.kind = 'batch' AND job.status IN ('completed', 'failed', 'cancelled')
        """
    )
    op.execute(
        """
        UPDATE detection.jobs AS job SET class_counts = COALESCE((
            SELECT jsonb_object_agg(counted.class_name, counted.objects)
            FROM (
                SELECT element.value ->> 'class_name' AS class_name, count(*) AS objects
                FROM detection.video_frames AS frame,
                    jsonb_array_elements(frame.objects) AS element
                WHERE frame.job_id = job.id
                GROUP BY 1
            ) AS counted
        ), '{}'::jsonb)
        WHERE job.kind = 'video' AND job.status IN ('completed', 'failed', 'cancelled')
        """
    )


def downgrade() -> None:
    op.drop_column("jobs", "class_counts", schema=SCHEMA)
