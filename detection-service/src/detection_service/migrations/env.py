"""Alembic environment of the detection service: schema `detection`, its own version table."""

from detection_service import outbox
from detection_service.accounts import models as account_models
from detection_service.database import SCHEMA, metadata
from detection_service.history import models as history_models
from detection_service.images import models as image_models
from detection_service.jobs import models as job_models
from detection_service.retention import models as retention_models
from detection_service.usage import models as usage_models
from detection_service.video import models as video_models
from objectvision_common.migrations import run_migrations

# The imports above register every table on `metadata`.
del (
    outbox,
    account_models,
    history_models,
    image_models,
    job_models,
    retention_models,
    usage_models,
    video_models,
)

run_migrations(metadata, schema=SCHEMA)
