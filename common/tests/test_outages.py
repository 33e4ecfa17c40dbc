"""A lost PostgreSQL or Redis reaches callers as UNAVAILABLE with a retry hint, not INTERNAL."""

import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from objectvision_common.errors import ERROR_CODE_TRAILER, RETRY_AFTER_TRAILER
from objectvision_common.grpc_client import insecure_channel
from objectvision_common.grpc_server import GrpcApp, ServiceRegistration
from objectvision_common.outages import outage_error

SERVICE = "test.Outages"


def _closed_port() -> int:
    """A port nothing listens on: bound, read, released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _query_a_database_that_is_down() -> None:
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/x")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("select 1"))
    finally:
        await engine.dispose()


async def _ping_a_redis_that_is_down() -> None:
    redis = Redis.from_url(f"redis://127.0.0.1:{_closed_port()}/0")
    try:
        await redis.ping()
    finally:
        await redis.aclose()


async def _captured(failing: object) -> Exception:
    try:
        await failing()  # type: ignore[operator]
    except Exception as error:
        return error
    raise AssertionError("the call was expected to fail")


async def test_a_refused_database_connection_is_an_outage() -> None:
    error = await _captured(_query_a_database_that_is_down)
    unavailable = outage_error(error)
    assert unavailable is not None
    assert unavailable.retry_after_seconds >= 1


async def test_a_refused_redis_connection_is_an_outage() -> None:
    assert outage_error(await _captured(_ping_a_redis_that_is_down)) is not None


@pytest.mark.parametrize(
    "error",
    [ValueError("bad value"), FileNotFoundError(2, "missing file"), KeyError("k")],
    ids=["value error", "missing file", "key error"],
)
def test_bugs_and_file_errors_are_not_outages(error: Exception) -> None:
    assert outage_error(error) is None


async def _database_down(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await _query_a_database_that_is_down()
    return b""


def _add(_servicer: object, server: grpc.aio.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(_database_down)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Query": handler}),)
    )


@pytest.fixture(scope="module")
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    app = GrpcApp([ServiceRegistration(SERVICE, object(), _add)], host="127.0.0.1", port=0)
    port = await app.start()
    async with insecure_channel(f"127.0.0.1:{port}") as client_channel:
        yield client_channel
    await app.stop()


async def test_a_handler_that_loses_its_database_answers_unavailable_with_retry_after(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await channel.unary_unary(f"/{SERVICE}/Query")(b"")
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    trailers = dict(raised.value.trailing_metadata())
    assert trailers[ERROR_CODE_TRAILER] == "unavailable"
    assert int(trailers[RETRY_AFTER_TRAILER]) >= 1
    assert "127.0.0.1" not in (raised.value.details() or "")


_WITHOUT_DRIVERS = """
import importlib.abc, sys

class NoDrivers(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("asyncpg", "sqlalchemy", "redis"):
            raise ImportError(f"{name}: not installed")
        return None

sys.meta_path.insert(0, NoDrivers())
from objectvision_common.outages import outage_error

refused = ConnectionRefusedError(111, "refused")
print(outage_error(refused) is not None, outage_error(ValueError("bug")) is None)
print(sorted(m for m in ("asyncpg", "sqlalchemy", "redis") if m in sys.modules))
"""


def test_without_the_database_drivers_an_outage_is_still_recognised() -> None:
    """The realtime role's environment has no asyncpg, SQLAlchemy or Redis client (ADR 0019):
    the classifier must import without them and still tell a refused socket from a bug."""
    answer = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DRIVERS], capture_output=True, text=True, timeout=60
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines() == ["True True", "[]"]
