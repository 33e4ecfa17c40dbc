"""The service's PostgreSQL schema: every table of the detection service lives in `detection`,
on one metadata with the shared naming convention (as auth's and notification's database.py)."""

from objectvision_common.db import schema_metadata

SCHEMA = "detection"
metadata = schema_metadata(SCHEMA)
