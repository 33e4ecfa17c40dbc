"""The server plumbing every service relies on, exercised through a real gRPC server."""

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from objectvision_common.errors import (
    ERROR_CODE_TRAILER,
    RETRY_AFTER_TRAILER,
    NotFound,
    Unavailable,
)
from objectvision_common.grpc_client import insecure_channel
from objectvision_common.grpc_server import GrpcApp, ServiceRegistration
from objectvision_common.request_context import REQUEST_ID_HEADER, current_request_id

SERVICE = "test.Echo"


async def _echo_request_id(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return (current_request_id() or "").encode()


async def _not_found(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise NotFound("no such thing")


async def _unavailable(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise Unavailable("model server is down", retry_after_seconds=3)


async def _crash(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("secret internal detail")


def _add(_servicer: object, server: grpc.aio.Server) -> None:
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(behaviour)
        for name, behaviour in {
            "Echo": _echo_request_id,
            "Missing": _not_found,
            "Down": _unavailable,
            "Crash": _crash,
        }.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture(scope="module")
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    app = GrpcApp([ServiceRegistration(SERVICE, object(), _add)], host="127.0.0.1", port=0)
    port = await app.start()
    async with insecure_channel(f"127.0.0.1:{port}") as client_channel:
        yield client_channel
    await app.stop()


def _call(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(f"/{SERVICE}/{method}")


async def test_the_request_id_sent_by_the_caller_is_the_one_the_handler_sees(channel) -> None:
    reply = await _call(channel, "Echo")(b"", metadata=((REQUEST_ID_HEADER, "req-42"),))
    assert reply == b"req-42"


async def test_a_call_without_a_request_id_gets_a_fresh_one(channel) -> None:
    reply = await _call(channel, "Echo")(b"")
    assert len(reply) == 32


async def test_domain_errors_map_to_their_status_and_stable_code(channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Missing")(b"")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "no such thing"
    assert (ERROR_CODE_TRAILER, "not_found") in tuple(raised.value.trailing_metadata())


async def test_unavailable_tells_the_caller_when_to_retry(channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Down")(b"")
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (RETRY_AFTER_TRAILER, "3") in tuple(raised.value.trailing_metadata())


async def test_unexpected_errors_hide_their_details(channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _call(channel, "Crash")(b"")
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (raised.value.details() or "")


async def test_health_reports_serving(channel) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def _peer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return context.peer().encode()


def _add_peer(_servicer: object, server: grpc.aio.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(_peer)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Peer", {"Peer": handler}),)
    )


@pytest.mark.parametrize(("age_seconds", "reconnects"), [(0.5, True), (0.0, False)])
async def test_connections_older_than_the_max_age_are_replaced(
    age_seconds: float, reconnects: bool
) -> None:
    """A new connection shows as a new client port at the server."""
    app = GrpcApp(
        [ServiceRegistration("test.Peer", object(), _add_peer)],
        host="127.0.0.1",
        port=0,
        max_connection_age_seconds=age_seconds,
    )
    port = await app.start()
    try:
        async with insecure_channel(f"127.0.0.1:{port}") as client_channel:
            call = client_channel.unary_unary("/test.Peer/Peer")
            first = await call(b"")
            await asyncio.sleep(2.0)
            later = [await call(b"") for _ in range(3)]
        assert (first not in later) is reconnects, (first, later)
    finally:
        await app.stop()
