"""The service as a process: health, identity of callers, schema, configuration."""

import asyncio
import os
import signal
import stat
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError
from sqlalchemy import create_engine

from auth_service.config import AuthSettings
from auth_service.database import SCHEMA, Base
from auth_service.server import MIGRATIONS_DIR, SERVICE_NAME, runner
from auth_service.tokens.keys import load_signing_key
from objectvision.v1 import auth_pb2, auth_pb2_grpc
from objectvision_common.db import schema_revisions, sync_url
from objectvision_common.grpc_client import insecure_channel
from objectvision_devstack.databases import fresh_database
from objectvision_devstack.processes import free_port

# How long the console script may take to start serving (imports, migrations, its first key).
START_WITHIN_SECONDS = 60


@pytest.mark.parametrize("service", ["", SERVICE_NAME])
async def test_health_service_answers_serving(channel, service):
    health = health_pb2_grpc.HealthStub(channel)

    response = await health.Check(health_pb2.HealthCheckRequest(service=service))

    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_call_without_principal_metadata_is_unauthenticated(auth, rejected):
    await rejected(grpc.StatusCode.UNAUTHENTICATED, auth.GetUser(auth_pb2.GetUserRequest()))


async def test_a_principal_signed_with_another_secret_is_unauthenticated(
    auth, accounts, principal, rejected
):
    account = await accounts.create()
    forged = principal(account.id, is_admin=True, secret="not-the-service-secret")

    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.GetUser(auth_pb2.GetUserRequest(), metadata=forged),
    )


async def test_a_principal_for_an_account_that_does_not_exist_is_unauthenticated(
    auth, principal, rejected
):
    await rejected(
        grpc.StatusCode.UNAUTHENTICATED,
        auth.GetUser(
            auth_pb2.GetUserRequest(),
            metadata=principal("00000000-0000-0000-0000-000000000000"),
        ),
    )


async def test_migrations_create_exactly_the_tables_the_models_describe(settings, auth_address):
    engine = create_engine(sync_url(settings.database_url))
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": _only_auth_schema,
                "compare_server_default": True,
            },
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()

    assert differences == []


def _only_auth_schema(name: str | None, type_: str, parent_names: dict) -> bool:
    if type_ == "schema":
        return name == SCHEMA
    return not (type_ == "table" and name == "alembic_version")


def test_migrating_twice_is_harmless(settings, auth_address):
    migrations = runner().migrations
    assert migrations is not None
    runner().migrate(settings)
    runner().migrate(settings)
    state = schema_revisions(
        migrations_dir=migrations.directory,
        database_url=settings.database_url,
        schema=migrations.schema,
    )
    assert state.at_head and len(state.heads) == 1, state


def test_argon2_parameters_below_the_owasp_floor_are_refused():
    with pytest.raises(ValidationError):
        AuthSettings(_env_file=None, ARGON2_MEMORY_COST_KIB=8192)
    with pytest.raises(ValidationError):
        AuthSettings(_env_file=None, ARGON2_TIME_COST=1)


def test_admin_emails_are_a_comma_separated_case_insensitive_list():
    settings = AuthSettings(_env_file=None, ADMIN_EMAILS=" Root@Example.com,, ops@example.com ")

    assert settings.admin_emails == frozenset({"root@example.com", "ops@example.com"})


def test_without_a_configured_key_one_is_generated_once_and_kept_private(tmp_path):
    settings = AuthSettings(_env_file=None, OBJECTVISION_DATA_DIR=tmp_path)

    first = load_signing_key(settings)
    second = load_signing_key(settings)

    assert first.kid == second.kid
    assert stat.S_IMODE(settings.generated_key_path.stat().st_mode) == 0o600


def test_production_refuses_to_generate_a_signing_key(tmp_path):
    settings = AuthSettings(
        _env_file=None,
        OBJECTVISION_DATA_DIR=tmp_path,
        OBJECTVISION_ENV="production",
        SERVICE_TOKEN_SECRET="k3C9yQ7m2Vt8Lr5Wn1Xp6Bz4Hd0Fs9Ja",
    )

    with pytest.raises(RuntimeError, match="JWT_PRIVATE_KEY"):
        load_signing_key(settings)


def test_a_key_that_is_not_ed25519_is_refused():
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

    with pytest.raises(ValueError, match="Ed25519"):
        load_signing_key(AuthSettings(_env_file=None, JWT_PRIVATE_KEY=pem.decode()))


def test_a_configured_key_loads_from_a_file_or_from_an_escaped_environment_value(
    tmp_path, signing_key
):
    pem = signing_key.private_pem().decode()
    key_file = tmp_path / "jwt.pem"
    key_file.write_text(pem)

    from_file = load_signing_key(AuthSettings(_env_file=None, JWT_PRIVATE_KEY_FILE=key_file))
    from_env = load_signing_key(
        AuthSettings(_env_file=None, JWT_PRIVATE_KEY=pem.replace("\n", "\\n"))
    )

    assert from_file.kid == from_env.kid == signing_key.kid


def test_setting_both_key_sources_is_refused(tmp_path, signing_key):
    with pytest.raises(ValidationError, match="not both"):
        AuthSettings(
            _env_file=None,
            JWT_PRIVATE_KEY=signing_key.private_pem().decode(),
            JWT_PRIVATE_KEY_FILE=tmp_path / "jwt.pem",
        )


async def test_the_console_script_migrates_serves_and_stops_cleanly_on_sigterm(
    infrastructure, tmp_path
):
    grpc_port, metrics_port = free_port(), free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": infrastructure.database_url,
        "REDIS_URL": infrastructure.redis_url,
        "OBJECTVISION_DATA_DIR": str(tmp_path / "data"),
        "AUTH_GRPC_PORT": str(grpc_port),
        "AUTH_METRICS_PORT": str(metrics_port),
        "ARGON2_TIME_COST": "2",
        "ARGON2_MEMORY_COST_KIB": "19456",
        "ARGON2_PARALLELISM": "1",
    }
    script = Path(sys.executable).parent / "objectvision-auth"
    migration = await asyncio.create_subprocess_exec(
        script, "migrate", env=environment, cwd=tmp_path
    )
    assert await migration.wait() == 0

    server = await asyncio.create_subprocess_exec(script, env=environment, cwd=tmp_path)
    try:
        async with insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            # Waits out the process's start (imports, its first signing key), which a loaded
            # CI machine stretches past the channel's default 10 s deadline.
            response = await health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME),
                wait_for_ready=True,
                timeout=START_WITHIN_SECONDS,
            )
            assert response.status == health_pb2.HealthCheckResponse.SERVING
            jwks = await auth_pb2_grpc.AuthServiceStub(channel).GetJwks(empty_pb2.Empty())
        metrics = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read()
        )
        assert b"grpc_server_handled_total" in metrics
        # No key configured: one was generated for this data directory, readable by us only.
        generated = AuthSettings(_env_file=None, OBJECTVISION_DATA_DIR=tmp_path / "data")
        assert jwks.keys[0].kid == load_signing_key(generated).kid
        assert stat.S_IMODE(generated.generated_key_path.stat().st_mode) == 0o600
    finally:
        server.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(server.wait(), timeout=20)

    assert exit_code == 0


async def test_serving_a_database_this_version_has_not_migrated_is_refused_saying_what_to_run(
    infrastructure, tmp_path
):
    """A pod of a new version started before its migrations ran, or a fresh database: the
    process exits at once naming the command, instead of answering every call with a
    missing-table error. After `migrate` the schema is at the scripts' head."""
    script = Path(sys.executable).parent / "objectvision-auth"
    with fresh_database(infrastructure.database_url) as database_url:
        environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": infrastructure.redis_url,
            "OBJECTVISION_DATA_DIR": str(tmp_path / "data"),
            "AUTH_GRPC_PORT": str(free_port()),
            "AUTH_METRICS_PORT": str(free_port()),
        }
        server = await asyncio.create_subprocess_exec(
            script,
            env=environment,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(server.communicate(), timeout=60)
        assert server.returncode == 1
        refusal = stderr.decode()
        assert "the database schema 'auth' is at no revision (never migrated)" in refusal
        assert "Run `objectvision-auth migrate` first" in refusal

        migration = await asyncio.create_subprocess_exec(
            script, "migrate", env=environment, cwd=tmp_path
        )
        assert await migration.wait() == 0
        state = schema_revisions(
            migrations_dir=MIGRATIONS_DIR, database_url=database_url, schema=SCHEMA
        )
        assert state.at_head, state
