"""The service's PostgreSQL schema: every table of the detection service lives in `detection`,
on one metadata with the shared naming convention (as auth's and notification's database.py)."""

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from objectvision_common.db import schema_metadata

SCHEMA = "detection"
metadata = schema_metadata(SCHEMA)


def owned_id_columns() -> tuple[sa.Column[uuid.UUID], sa.Column[str]]:
    """`id` and `user_id`, the first columns of a table of what a user stored (detections,
    their images, jobs): every read is scoped to the owner, so a row always names one."""
    return (
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
    )
