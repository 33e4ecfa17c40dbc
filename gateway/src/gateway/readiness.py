"""Whether the gateway can serve: Redis answers and every gRPC service reports SERVING."""

import asyncio

import grpc
from grpc_health.v1 import health_pb2

from gateway.clients import ServiceClients


class NotServingError(Exception):
    """The service answered the health check, but not with SERVING."""


async def _check_redis(clients: ServiceClients, deadline_seconds: float) -> None:
    async with asyncio.timeout(deadline_seconds):
        await clients.redis.ping()


async def _check_service(clients: ServiceClients, name: str, deadline_seconds: float) -> None:
    # types-grpcio-health-checking declares HealthStub without its methods.
    check = clients.health[name].Check  # type: ignore[attr-defined]
    reply = await check(health_pb2.HealthCheckRequest(service=""), timeout=deadline_seconds)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise NotServingError(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def _describe(error: BaseException) -> str:
    """A short reason without addresses or stack details (the endpoint is public)."""
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code().name.lower()
    if isinstance(error, NotServingError):
        return str(error).lower()
    if isinstance(error, TimeoutError):
        return "timeout"
    return "unreachable"


async def check_dependencies(
    clients: ServiceClients, *, deadline_seconds: float
) -> dict[str, str | None]:
    """Each dependency's failure reason, or None when it is fine; checked concurrently."""
    checks = {"redis": _check_redis(clients, deadline_seconds)}
    for name in clients.health:
        checks[name] = _check_service(clients, name, deadline_seconds)
    results = await asyncio.gather(*checks.values(), return_exceptions=True)
    return {
        name: _describe(result) if isinstance(result, BaseException) else None
        for name, result in zip(checks, results, strict=True)
    }
