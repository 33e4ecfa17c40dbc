"""Alembic environment of the detection service: schema `detection`, its own version table."""

from detection_service import outbox
from detection_service.history import models as history_models
from detection_service.jobs import models as job_models
from detection_service.schema import SCHEMA, metadata
from objectvision_common.migrations import run_migrations

# The imports above register every table on `metadata`.
del outbox, history_models, job_models

run_migrations(metadata, schema=SCHEMA)
