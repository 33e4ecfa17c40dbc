"""The `notification` schema every table of this service hangs off."""

from objectvision_common.db import schema_metadata

SCHEMA = "notification"

metadata = schema_metadata(SCHEMA)
