"""Before serving, a service checks that its schema is where this version's migrations put
it: behind (or never migrated) is refused with the command to run; a schema a newer version
migrated, or a database that cannot be reached now, is served with a warning.

Real PostgreSQL (a fresh database per test) and real Alembic scripts, written here: two
revisions in a schema of their own.
"""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from objectvision_common.db import schema_revisions, sync_url
from objectvision_common.runner import Migrations
from objectvision_devstack.databases import fresh_database
from objectvision_devstack.processes import free_port
from objectvision_devstack.pytest_plugin import Infrastructure

SCHEMA = "probe"

ENV = """
from sqlalchemy import MetaData
from objectvision_common.migrations import run_migrations

run_migrations(MetaData(schema="probe"), schema="probe")
"""

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = {down}


def upgrade() -> None:
    op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True), schema="probe")


def downgrade() -> None:
    op.drop_table("{table}", schema="probe")
"""


@pytest.fixture
def migrations(tmp_path: Path) -> Migrations:
    directory = tmp_path / "migrations"
    (directory / "versions").mkdir(parents=True)
    (directory / "env.py").write_text(ENV)
    for revision, down, table in (("0001", None, "first"), ("0002", '"0001"', "second")):
        (directory / "versions" / f"{revision}.py").write_text(
            REVISION.format(revision=revision, down=down, table=table)
        )
    return Migrations(directory, schema=SCHEMA)


@pytest.fixture
def database_url(infrastructure: Infrastructure) -> Iterator[str]:
    with fresh_database(infrastructure.database_url) as url:
        yield url


def _record_revision(database_url: str, revision: str) -> None:
    engine = create_engine(sync_url(database_url))
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE probe.alembic_version SET version_num = :r"), {"r": revision}
        )
    engine.dispose()


def test_a_database_never_migrated_is_refused_with_the_command_to_run(
    migrations: Migrations, database_url: str
) -> None:
    with pytest.raises(SystemExit) as refused:
        migrations.require_migrated(database_url, migrate_command="objectvision-probe migrate")
    message = str(refused.value.code)
    assert "the database schema 'probe' is at no revision (never migrated)" in message
    assert "this version needs 0002" in message
    assert "Run `objectvision-probe migrate` first" in message


def test_a_schema_one_revision_behind_is_refused(migrations: Migrations, database_url: str) -> None:
    migrations.upgrade(database_url)
    _record_revision(database_url, "0001")
    state = schema_revisions(
        migrations_dir=migrations.directory, database_url=database_url, schema=SCHEMA
    )
    assert (state.applied, state.heads, state.behind) == ({"0001"}, {"0002"}, True)
    with pytest.raises(SystemExit, match="is at 0001; this version needs 0002"):
        migrations.require_migrated(database_url, migrate_command="objectvision-probe migrate")


def test_a_schema_at_head_is_served_without_a_word(
    migrations: Migrations, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    migrations.upgrade(database_url)
    with caplog.at_level(logging.WARNING, logger="objectvision_common.runner"):
        migrations.require_migrated(database_url, migrate_command="objectvision-probe migrate")
    assert caplog.records == []


def test_a_schema_a_newer_version_migrated_is_served_with_a_warning(
    migrations: Migrations, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What a rollback meets: older code on a schema it has no script for."""
    migrations.upgrade(database_url)
    _record_revision(database_url, "0003_from_the_future")
    with caplog.at_level(logging.WARNING, logger="objectvision_common.runner"):
        migrations.require_migrated(database_url, migrate_command="objectvision-probe migrate")
    assert [r.getMessage() for r in caplog.records] == [
        "the database schema was migrated by a newer version; serving"
    ]


def test_a_database_that_cannot_be_reached_is_left_to_the_outage_handling(
    migrations: Migrations, caplog: pytest.LogCaptureFixture
) -> None:
    """A database outage at start-up must not become a crash loop: every call already
    answers UNAVAILABLE while the database is away."""
    unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/objectvision"
    with caplog.at_level(logging.WARNING, logger="objectvision_common.runner"):
        migrations.require_migrated(unreachable, migrate_command="objectvision-probe migrate")
    assert [r.getMessage() for r in caplog.records] == [
        "could not check the database schema's revision; serving"
    ]
