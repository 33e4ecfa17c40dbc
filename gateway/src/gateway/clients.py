"""Connections the gateway holds for its whole life: one gRPC channel per service and Redis."""

from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2_grpc
from redis.asyncio import Redis

from gateway.config import GatewaySettings
from objectvision.v1 import auth_pb2_grpc, detection_pb2_grpc, notification_pb2_grpc
from objectvision_common.grpc_client import service_channel
from objectvision_common.redis_client import connect_redis

# A dead Redis must fail a request (or a readiness probe) quickly, not hang it.
_REDIS_TIMEOUT_SECONDS = 2.0


@dataclass
class ServiceClients:
    """Stubs over long-lived channels; channels multiplex, so one per service is enough."""

    # The stubs' asyncio face (mypy-protobuf's typing-only classes, hence quoted): calls return
    # awaitables of the response messages.
    auth: "auth_pb2_grpc.AuthServiceAsyncStub"
    detection: "detection_pb2_grpc.DetectionServiceAsyncStub"
    notification: "notification_pb2_grpc.NotificationServiceAsyncStub"
    redis: Redis
    # grpc.health.v1 stubs by service name, for readiness.
    health: dict[str, health_pb2_grpc.HealthStub]
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    @classmethod
    def connect(cls, settings: GatewaySettings) -> "ServiceClients":
        """Create the channels; they connect lazily, so a service may start after the gateway."""
        addresses = {
            "auth": settings.auth_service_addr,
            "detection": settings.detection_service_addr,
            "notification": settings.notification_service_addr,
        }
        tls = settings.grpc_tls
        channels = {name: service_channel(address, tls) for name, address in addresses.items()}
        redis = connect_redis(
            settings.redis_url,
            socket_timeout=_REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
            health_check_interval=30,
        )
        return cls(
            auth=auth_pb2_grpc.AuthServiceStub(channels["auth"]),
            detection=detection_pb2_grpc.DetectionServiceStub(channels["detection"]),
            notification=notification_pb2_grpc.NotificationServiceStub(channels["notification"]),
            redis=redis,
            health={name: health_pb2_grpc.HealthStub(ch) for name, ch in channels.items()},
            channels=list(channels.values()),
        )

    async def aclose(self) -> None:
        for channel in self.channels:
            await channel.close()
        await self.redis.aclose()
