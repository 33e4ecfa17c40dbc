"""The declarative base every auth table hangs off: one PostgreSQL schema, `auth`."""

from datetime import UTC, datetime

from sqlalchemy.orm import DeclarativeBase

from objectvision_common.db import schema_metadata

SCHEMA = "auth"


class Base(DeclarativeBase):
    """Tables of the auth schema, named by the shared naming convention."""

    metadata = schema_metadata(SCHEMA)


def utcnow() -> datetime:
    """Timestamps are set in Python so that a flushed row has them without a reload."""
    return datetime.now(UTC)
