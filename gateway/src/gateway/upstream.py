"""Calls to the internal services on behalf of one HTTP request."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.clients import ServiceClients
from objectvision.v1 import auth_pb2_grpc, detection_pb2_grpc, notification_pb2_grpc

ResponseT = TypeVar("ResponseT")


@dataclass(frozen=True)
class Upstream:
    """The service stubs plus what every call must carry: the gateway's deadline and, once
    the caller is authenticated, their Principal signed with SERVICE_TOKEN_SECRET.

    A failed call raises grpc.aio.AioRpcError, which gateway.errors turns into HTTP.
    """

    clients: ServiceClients
    deadline_seconds: float
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def auth(self) -> auth_pb2_grpc.AuthServiceStub:
        return self.clients.auth

    @property
    def detection(self) -> detection_pb2_grpc.DetectionServiceStub:
        return self.clients.detection

    @property
    def notification(self) -> notification_pb2_grpc.NotificationServiceStub:
        return self.clients.notification

    async def call(self, method: Callable[..., Awaitable[ResponseT]], request: Any) -> ResponseT:
        """One unary call, e.g. `await upstream.call(upstream.auth.GetUser, request)`."""
        return await method(request, metadata=self.metadata, timeout=self.deadline_seconds)
