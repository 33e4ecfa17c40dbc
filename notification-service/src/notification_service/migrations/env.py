"""Alembic environment: the notification schema, its own version table."""

from notification_service.accounts import models as _accounts  # noqa: F401
from notification_service.database import SCHEMA, metadata
from notification_service.deliveries import models as _deliveries  # noqa: F401
from notification_service.events import models as _events  # noqa: F401
from notification_service.webhooks import models as _webhooks  # noqa: F401
from objectvision_common.migrations import run_migrations

run_migrations(metadata, schema=SCHEMA)
