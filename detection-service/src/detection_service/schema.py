"""The service's PostgreSQL schema: every table of the detection service lives in `detection`."""

from objectvision_common.db import schema_metadata

SCHEMA = "detection"
metadata = schema_metadata(SCHEMA)
