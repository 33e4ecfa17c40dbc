"""Session fixtures that start real PostgreSQL and Redis once for the whole test run.

Set DATABASE_URL / REDIS_URL to test against external servers instead.
"""

import os
import shutil
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from objectvision_devstack.otlp import OtlpReceiver
from objectvision_devstack.postgres import EmbeddedPostgres, scratch_pgdata
from objectvision_devstack.redis import EmbeddedRedis
from objectvision_devstack.stack import embedded
from objectvision_devstack.supervision import Supervisor
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


# The shared Triton's supervisor, for the failure reports (pytest_runtest_makereport).
SHARED_TRITON_SUPERVISION = pytest.StashKey[Supervisor]()


@pytest.fixture(scope="session")
def triton(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[LocalTriton]:
    """A real Triton serving the prepared model, shared by every suite that needs one.

    Supervised as `make run`'s is: should it crash (its Python backend can abort, Triton issue
    8882), it comes back on its ports and the tests after it find it serving; every failing
    test's report then carries the crash and the end of Triton's log."""
    server = LocalTriton(tmp_path_factory.mktemp("triton"), served_model=served_model_path())
    lock = threading.RLock()
    supervision = Supervisor(
        parts=lambda: {"triton": server.process},
        start_part=lambda _name: server.start(),
        latest=lambda _name: server.process,
        part_lock=lambda _name: lock,
    )
    server.start()
    supervision.start()
    pytestconfig.stash[SHARED_TRITON_SUPERVISION] = supervision
    try:
        yield server
    finally:
        supervision.close()
        with lock:
            server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report says whether the shared Triton crashed during the run: what
    failed after a crash is read differently from a fault of the code under test."""
    report: pytest.TestReport = yield
    supervision = item.config.stash.get(SHARED_TRITON_SUPERVISION, None)
    # A copy first: a restart thread may add an incident while this one is formatted.
    incidents = list(supervision.incidents) if supervision is not None else []
    if report.failed and incidents:
        report.sections.append(
            (
                "shared Triton crashed during this run",
                "\n\n".join(incident.describe() for incident in incidents),
            )
        )
    return report


@pytest.fixture(scope="module")
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A real OTLP/gRPC trace receiver on a free loopback port (its ``endpoint`` is what
    OTEL_EXPORTER_OTLP_ENDPOINT takes); the spans it got, for the test to read."""
    with OtlpReceiver() as server:
        yield server
