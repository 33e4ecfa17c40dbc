"""Session fixtures that start real PostgreSQL and Redis once for the whole test run.

Set DATABASE_URL / REDIS_URL to test against external servers instead.
"""

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from objectvision_devstack.otlp import OtlpReceiver
from objectvision_devstack.postgres import EmbeddedPostgres, scratch_pgdata
from objectvision_devstack.redis import EmbeddedRedis
from objectvision_devstack.stack import embedded
from objectvision_devstack.triton import LocalTriton, served_model_path


@dataclass(frozen=True)
class Infrastructure:
    database_url: str
    redis_url: str
    data_dir: Path


@pytest.fixture(scope="session")
def infrastructure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    data_dir = tmp_path_factory.mktemp("infra")
    postgres, pgdata = None, None
    if not os.environ.get("DATABASE_URL"):
        # Outside pytest's temporary root where that matters (root): postgres.scratch_pgdata.
        pgdata = scratch_pgdata()
        postgres = EmbeddedPostgres(data_dir, pgdata=pgdata)
    redis_server = None if os.environ.get("REDIS_URL") else EmbeddedRedis(data_dir)
    if postgres:
        postgres.start()
    if redis_server:
        redis_server.start()
    try:
        yield Infrastructure(
            database_url=os.environ.get("DATABASE_URL") or embedded(postgres, "PostgreSQL").url(),
            redis_url=os.environ.get("REDIS_URL") or embedded(redis_server, "Redis").url,
            data_dir=data_dir,
        )
    finally:
        if redis_server:
            redis_server.stop()
        if postgres:
            postgres.stop()
        if pgdata:
            shutil.rmtree(pgdata, ignore_errors=True)


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTriton]:
    """A real Triton serving the prepared model, shared by every suite that needs one."""
    server = LocalTriton(tmp_path_factory.mktemp("triton"), served_model=served_model_path())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP/gRPC trace receiver on a free loopback port (its ``endpoint`` is what
    OTEL_EXPORTER_OTLP_ENDPOINT takes); the spans it got, for the test to read."""
    with OtlpReceiver() as server:
        yield server
