"""The body of every service's Alembic `env.py`: one schema, its own version table."""

from alembic import context
from sqlalchemy import Connection, MetaData, create_engine


def run_migrations(target_metadata: MetaData, *, schema: str) -> None:
    config = context.config
    connection = config.attributes.get("connection")
    schema = config.attributes.get("schema", schema)
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("set sqlalchemy.url or run through objectvision_common.db")
        with create_engine(url).begin() as own_connection:
            _run(own_connection, target_metadata, schema)
        return
    _run(connection, target_metadata, schema)


def _run(connection: Connection, target_metadata: MetaData, schema: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=schema,
        include_schemas=False,
    )
    with context.begin_transaction():
        context.run_migrations()
