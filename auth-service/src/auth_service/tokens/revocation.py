"""Revoked access tokens, in Redis, shared with the gateway.

Key format (the gateway reads the same keys; see docs/adr/0002-auth-tokens.md):
`auth:revoked:<jti>` = "1", with a TTL equal to the token's remaining lifetime, so the list
never outgrows the set of tokens that could still be presented.
"""

import math
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError

from objectvision_common.errors import Unavailable

REVOKED_KEY_PREFIX = "auth:revoked:"


def revoked_key(jti: str) -> str:
    return f"{REVOKED_KEY_PREFIX}{jti}"


class RevokedAccessTokens:
    """The revocation list. Fails closed: without Redis no token can be shown to be live."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def revoke(self, *, jti: str, until: datetime, now: datetime | None = None) -> None:
        """Refuse `jti` until `until`, after which the token is refused as expired anyway."""
        remaining = (until - (now or datetime.now(UTC))).total_seconds()
        if remaining <= 0:
            return
        try:
            await self._redis.set(revoked_key(jti), "1", ex=math.ceil(remaining))
        except RedisError as exc:
            raise Unavailable("the token revocation list is unavailable") from exc

    async def is_revoked(self, jti: str) -> bool:
        try:
            return bool(await self._redis.exists(revoked_key(jti)))
        except RedisError as exc:
            raise Unavailable("the token revocation list is unavailable") from exc
