"""Who gets a job report: the user's address and notification setting, from auth-service.

Auth-service owns both and both can change (email updates, the notifications switch), so
they are read when a job finishes rather than copied from user.registered.
"""

import logging
from dataclasses import dataclass

import grpc

from objectvision.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from objectvision_common.identity import principal_metadata

logger = logging.getLogger(__name__)

SERVICE_AUTH_METHOD = "service"
CALL_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Contact:
    email: str
    name: str
    notifications_enabled: bool
    active: bool
    # The address the account waits to move to (ADR 0033), if any: the one other address a
    # link may be mailed to.
    pending_email: str | None = None


class UserDirectory:
    def __init__(self, channel: grpc.aio.Channel, *, service_secret: str) -> None:
        self._stub = auth_pb2_grpc.AuthServiceStub(channel)
        self._secret = service_secret

    def _as_user(self, user_id: str) -> tuple[tuple[str, str], ...]:
        """The user's own identity, signed by us: auth-service lets a user read themselves."""
        principal = common_pb2.Principal(
            user_id=user_id,
            auth_method=SERVICE_AUTH_METHOD,
            credential_id="notification-service",
        )
        return principal_metadata(principal, secret=self._secret)

    async def contact(self, user_id: str) -> Contact | None:
        """None when the user no longer exists or is disabled; other failures raise (the event
        is retried)."""
        metadata = self._as_user(user_id)
        try:
            user = await self._stub.GetUser(
                auth_pb2.GetUserRequest(user_id=user_id),
                metadata=metadata,
                timeout=CALL_TIMEOUT_SECONDS,
            )
            settings = await self._stub.GetSettings(
                auth_pb2.GetSettingsRequest(user_id=user_id),
                metadata=metadata,
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                # auth-service refuses the principal of a deleted or disabled account
                # (UNAUTHENTICATED); they get no mail either way. Retrying would only end in
                # the dead-letter stream. A service secret that auth-service does not share
                # would answer the same, but then the gateway's calls fail too.
                logger.warning("auth-service refused to show a user", extra={"user_id": user_id})
                return None
            raise
        return Contact(
            email=user.email,
            name=user.name,
            notifications_enabled=settings.notifications_enabled,
            active=user.is_active,
            pending_email=user.pending_email or None,
        )
