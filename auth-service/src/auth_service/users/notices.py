"""At most one "someone tried to use your address" notice per account and window.

Sign-up answers alike whether or not an address has an account and tells the owner instead;
so does an email change to a taken address. Uncapped, anyone could fill an owner's inbox by
signing up with their address (or asking for it on another account) again and again: the
gateway limits sign-ups per network, not per address, and email changes not at all. The two
kinds share one cap: the owner hears about their address at most once a window, whichever
way it was tried.
"""

import logging
import math
import uuid
from datetime import timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

NOTICE_KEY_PREFIX = "auth:signup-notice:"
# Enough for an owner to learn that someone is using their address; more would be noise.
NOTICE_WINDOW = timedelta(hours=1)


def notice_key(user_id: uuid.UUID) -> str:
    return f"{NOTICE_KEY_PREFIX}{user_id}"


class SignUpNotices:
    def __init__(self, redis: Redis, *, window: timedelta = NOTICE_WINDOW) -> None:
        self._redis = redis
        self._window_seconds = math.ceil(window.total_seconds())

    async def claim(self, user_id: uuid.UUID) -> bool:
        """True when no notice went to this account within the window; records this one.

        Without Redis the notice is sent anyway: failing the request instead would answer
        differently for a taken address, which is what sign-up and email changes must not do.
        """
        try:
            claimed = await self._redis.set(
                notice_key(user_id), "1", nx=True, ex=self._window_seconds
            )
        except RedisError:
            logger.warning("sign-up notice cap unavailable; sending the notice", exc_info=True)
            return True
        return bool(claimed)
