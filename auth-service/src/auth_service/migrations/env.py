"""Alembic environment of the auth schema; run through `objectvision-auth migrate`."""

from auth_service import outbox  # noqa: F401  (registers the table)
from auth_service.api_keys import models as api_keys_models  # noqa: F401  (registers tables)
from auth_service.database import SCHEMA, Base
from auth_service.email_verifications import models as email_verifications_models  # noqa: F401
from auth_service.password_resets import models as password_resets_models  # noqa: F401
from auth_service.preferences import models as preferences_models  # noqa: F401
from auth_service.tokens import models as tokens_models  # noqa: F401
from auth_service.two_factor import models as two_factor_models  # noqa: F401
from auth_service.users import models as users_models  # noqa: F401
from objectvision_common.migrations import run_migrations

run_migrations(Base.metadata, schema=SCHEMA)
