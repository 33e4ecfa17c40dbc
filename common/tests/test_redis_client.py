"""A service's Redis client outlives a Redis restart: no command fails because of it.

Against a real redis-server that the test stops and starts again on the same port. The
plain client of redis-py fails the first command on each connection that was idle across
the restart; `connect_redis` must not.
"""

import asyncio
from pathlib import Path

from objectvision_common.redis_client import connect_redis
from objectvision_devstack.redis import EmbeddedRedis


async def test_the_first_commands_after_a_redis_restart_succeed(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    client = connect_redis(server.url, decode_responses=True, health_check_interval=0)
    try:
        # Several pooled connections, as a service with concurrent callers holds.
        await asyncio.gather(*(client.xadd("jobs", {"n": index}) for index in range(4)))
        server.stop()
        server.start()
        appended = await asyncio.gather(*(client.xadd("jobs", {"n": "after"}) for _ in range(4)))
        assert all(appended)
        assert await client.xlen("jobs") == 8
    finally:
        await client.aclose()
        server.stop()
