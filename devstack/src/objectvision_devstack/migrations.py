"""Where a service's schema stands against its Alembic scripts, for tests and operators'
scripts that must know a database is migrated, not only that `migrate` exited 0."""

from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from objectvision_common.db import sync_url
from objectvision_common.runner import Migrations


def applied_revisions(database_url: str, migrations: Migrations) -> set[str]:
    """The revisions recorded in the schema's own version table (empty: never migrated)."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table_schema": migrations.schema}
            )
            return set(context.get_current_heads())
    finally:
        engine.dispose()


def head_revisions(migrations: Migrations) -> set[str]:
    """The newest revisions of the service's scripts (one, unless the history has branched)."""
    config = Config()
    config.set_main_option("script_location", str(migrations.directory))
    return set(ScriptDirectory.from_config(config).get_heads())
