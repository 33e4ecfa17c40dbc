"""Async SQLAlchemy for the serving path, and the one Alembic runner every service uses.

Each service owns one PostgreSQL schema; its tables and its Alembic version table live there,
so services share a server without sharing tables.
"""

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def schema_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def async_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def create_engine_for(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _scripts_config(migrations_dir: Path) -> Config:
    """Alembic's configuration for a service's migrations folder, with no ini file."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    return config


def upgrade_to_head(*, migrations_dir: Path, database_url: str, schema: str) -> None:
    """Apply a service's migrations; safe to run on every start and from several processes."""
    upgrade_to(
        migrations_dir=migrations_dir, database_url=database_url, schema=schema, revision="head"
    )


def upgrade_to(*, migrations_dir: Path, database_url: str, schema: str, revision: str) -> None:
    """Apply a service's migrations up to `revision`: "head" when a service migrates, an
    earlier one where a test needs the rows a migration will find (what it does to data made
    before it)."""
    url = sync_url(database_url)
    engine = create_engine(url)
    with engine.begin() as connection:
        # Serialise concurrent migrators (several replicas starting at once).
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        config = _scripts_config(migrations_dir)
        config.attributes["connection"] = connection
        config.attributes["schema"] = schema
        command.upgrade(config, revision)
    engine.dispose()


@dataclass(frozen=True)
class SchemaRevisions:
    """Where a schema stands against its service's Alembic scripts."""

    # Recorded in the schema's own version table; empty when it was never migrated.
    applied: frozenset[str]
    # The scripts' newest revisions (one, unless their history has branched).
    heads: frozenset[str]
    # Every revision the scripts define.
    known: frozenset[str]

    @property
    def at_head(self) -> bool:
        return self.applied == self.heads

    @property
    def behind(self) -> bool:
        """`migrate` has not run for this version: every applied revision is one the scripts
        know, and the head is not among them (or nothing was ever applied)."""
        return not self.at_head and self.applied <= self.known

    @property
    def ahead(self) -> bool:
        """The schema carries a revision these scripts do not know: a newer version migrated
        it (a rollback is running older code against it)."""
        return not self.applied <= self.known


def schema_revisions(
    *, migrations_dir: Path, database_url: str, schema: str, connect_timeout_s: int = 5
) -> SchemaRevisions:
    """Read the schema's version table; raises sqlalchemy's DBAPIError when the server cannot
    be reached within `connect_timeout_s` or refuses the query."""
    scripts = ScriptDirectory.from_config(_scripts_config(migrations_dir))
    engine = create_engine(
        sync_url(database_url), connect_args={"connect_timeout": connect_timeout_s}
    )
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
            applied = frozenset(context.get_current_heads())
    finally:
        engine.dispose()
    return SchemaRevisions(
        applied=applied,
        heads=frozenset(scripts.get_heads()),
        known=frozenset(script.revision for script in scripts.walk_revisions()),
    )
